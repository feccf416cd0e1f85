//! The codec of every generated service and client: prost's, except that a
//! body which does not decode is the caller's mistake, answered
//! INVALID_ARGUMENT naming the message (with `popbase-field: body` and
//! `popbase-reason: MALFORMED_BODY`), not INTERNAL, which would page an
//! operator for a client's bug or a fuzzer's input.

use std::marker::PhantomData;

use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::metadata::MetadataValue;
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Reason code of a request whose body is not the protobuf message it should be.
pub const MALFORMED_BODY: &str = "MALFORMED_BODY";

#[derive(Debug, Clone, Default)]
pub struct PopbaseCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Codec for PopbaseCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = CheckedDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        CheckedDecoder {
            inner: ProstCodec::<T, U>::raw_decoder(BufferSettings::default()),
        }
    }
}

/// prost's decoder with the failure answered as the caller's.
#[derive(Debug)]
pub struct CheckedDecoder<U> {
    inner: ProstDecoder<U>,
}

/// The refusal of a body that does not decode as `U`: the message's name
/// and nothing of the bytes.
pub fn malformed<U>() -> Status {
    let name = std::any::type_name::<U>().rsplit("::").next().unwrap_or("message");
    let mut status = Status::invalid_argument(format!("invalid body: not a valid {name} message"));
    status.metadata_mut().insert("popbase-field", MetadataValue::from_static("body"));
    status
        .metadata_mut()
        .insert("popbase-reason", MetadataValue::from_static(MALFORMED_BODY));
    status
}

impl<U: prost::Message + Default> Decoder for CheckedDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.inner.decode(buf).map_err(|_| malformed::<U>())
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.inner.buffer_settings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_body_is_the_callers_error_naming_the_message() {
        let status = malformed::<crate::gateway::PersonSummaryRequest>();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("PersonSummaryRequest"), "{}", status.message());
        assert_eq!(
            status.metadata().get("popbase-reason").and_then(|v| v.to_str().ok()),
            Some(MALFORMED_BODY)
        );
    }
}
