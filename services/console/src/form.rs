//! Form bodies (`application/x-www-form-urlencoded`), parsed by hand: a
//! bounded body, at most [`MAX_FIELDS`] fields, each value at most
//! [`MAX_VALUE`] bytes. Nothing of what a caller typed is ever echoed in an
//! error: the error names the field only.

use std::collections::HashMap;

use percent_encoding::percent_decode_str;

/// Largest form body read.
pub const MAX_BODY: usize = 16 * 1024;
/// Most fields in one form.
pub const MAX_FIELDS: usize = 32;
/// Longest field value.
pub const MAX_VALUE: usize = 4096;
/// Largest body of the catalogue's forms: its text (at most 1 MiB) URL-encoded.
pub const MAX_CATALOGUE_BODY: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormError {
    #[error("the form is not URL-encoded text")]
    Encoding,
    #[error("the form has too many fields")]
    TooManyFields,
    #[error("field {0} is too long")]
    TooLong(String),
}

/// The fields of a form body (a repeated name keeps its last value).
#[derive(Debug, Default)]
pub struct Form {
    fields: HashMap<String, String>,
}

impl Form {
    pub fn parse(body: &[u8]) -> Result<Self, FormError> {
        Self::parse_with(body, MAX_VALUE)
    }

    /// [`Form::parse`] with values up to `max_value` bytes (the catalogue's text).
    pub fn parse_with(body: &[u8], max_value: usize) -> Result<Self, FormError> {
        let text = std::str::from_utf8(body).map_err(|_| FormError::Encoding)?;
        let mut fields = HashMap::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            if fields.len() == MAX_FIELDS {
                return Err(FormError::TooManyFields);
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name)?;
            let value = decode(value)?;
            if value.len() > max_value || name.len() > 64 {
                return Err(FormError::TooLong(
                    name.chars().take(64).filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect(),
                ));
            }
            fields.insert(name, value);
        }
        Ok(Self { fields })
    }

    /// A field's value, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.fields.get(name).map(|v| v.trim()).unwrap_or("")
    }
}

fn decode(part: &str) -> Result<String, FormError> {
    let spaced = part.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| FormError::Encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent_and_refuses_what_is_not_text() {
        let form = Form::parse("a=1+2&b=%E6%B7%84%E5%8D%9A&c&d=%26".as_bytes()).expect("form");
        assert_eq!(form.get("a"), "1 2");
        assert_eq!(form.get("b"), "淄博");
        assert_eq!(form.get("c"), "");
        assert_eq!(form.get("d"), "&");
        assert_eq!(form.get("missing"), "");
        assert_eq!(Form::parse(b"a=%FF").map(|_| ()), Err(FormError::Encoding));
        assert_eq!(Form::parse(&[0xff, 0x3d]).map(|_| ()), Err(FormError::Encoding));
        let many = (0..40).map(|i| format!("f{i}=1")).collect::<Vec<_>>().join("&");
        assert_eq!(Form::parse(many.as_bytes()).map(|_| ()), Err(FormError::TooManyFields));
        let long = format!("token={}", "x".repeat(MAX_VALUE + 1));
        assert_eq!(Form::parse(long.as_bytes()).map(|_| ()), Err(FormError::TooLong("token".into())));
    }
}
