//! Masking for display, logs and minimised answers.
//!
//! Every function works on characters, not bytes, so Chinese names mask correctly,
//! and never panics on odd input: unexpected lengths are masked *more*, not less.

/// `370302199001011234` → `370302********1234`. Other lengths keep at most the
/// first two and last two characters.
pub fn mask_id_number(id: &str) -> String {
    // Every answer about a person masks an ID number or three: the usual
    // 18 ASCII characters are masked in place, without a char buffer.
    if id.len() == 18 && id.is_ascii() {
        let mut masked = String::with_capacity(18);
        masked.push_str(&id[..6]);
        masked.push_str("********");
        masked.push_str(&id[14..]);
        return masked;
    }
    let chars: Vec<char> = id.chars().collect();
    match chars.len() {
        18 => keep_ends(&chars, 6, 4),
        15 => keep_ends(&chars, 6, 3),
        n if n > 4 => keep_ends(&chars, 2, 2),
        n => "*".repeat(n),
    }
}

/// `张三明` → `张*明`, `张三` → `张*`, `欧阳小明` → `欧**明`.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".to_string(),
        2 => format!("{}*", chars[0]),
        _ => keep_ends(&chars, 1, 1),
    }
}

/// `13812345678` → `138****5678`; other lengths keep the last two digits.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    match chars.len() {
        11 => keep_ends(&chars, 3, 4),
        n if n > 2 => keep_ends(&chars, 0, 2),
        n => "*".repeat(n),
    }
}

fn keep_ends(chars: &[char], head: usize, tail: usize) -> String {
    let n = chars.len();
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < head || i >= n - tail { *c } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers_keep_county_and_last_four() {
        assert_eq!(mask_id_number("370302199001011234"), "370302********1234");
        assert_eq!(mask_id_number("37030219900101123X"), "370302********123X");
        assert_eq!(mask_id_number("370302900101123"), "370302******123");
        assert_eq!(mask_id_number("1234567"), "12***67");
        assert_eq!(mask_id_number("123"), "***");
        assert_eq!(mask_id_number(""), "");
        // 18 bytes but 12 characters: masked by characters, never split.
        assert_eq!(mask_id_number("张三明370302199"), "张三********99");
    }

    #[test]
    fn names_keep_first_and_last_character() {
        assert_eq!(mask_name("张三明"), "张*明");
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳小明"), "欧**明");
        assert_eq!(mask_name("李"), "*");
        assert_eq!(mask_name(""), "");
    }

    #[test]
    fn phones_keep_prefix_and_last_four() {
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("05332345678"), "053****5678");
        assert_eq!(mask_phone("2345678"), "*****78");
        assert_eq!(mask_phone("12"), "**");
    }
}
