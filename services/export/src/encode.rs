//! Record batches to Flight messages, reusing one body buffer's size.
//!
//! `arrow_flight`'s `FlightDataEncoder` encodes each batch's body into a
//! `Vec` that starts empty: a batch of persons (about a megabyte) grew it
//! by doubling, copying what it held each time and touching fresh pages
//! the kernel had to zero (about 4 % of the server's CPU in a full export
//! of persons). Here the IPC writer keeps its last body's capacity for the
//! next (`IpcWriteContext::set_reserve_scratch`), so every body is written
//! once into room of the right size. The messages are the same IPC stream:
//! the schema first, then each batch (dictionaries before the batch that
//! uses them), batches over [`MAX_MESSAGE_BYTES`] sliced.

use arrow_array::RecordBatch;
use arrow_flight::FlightData;
use arrow_flight::error::FlightError;
use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions};
use arrow_schema::SchemaRef;
use futures::stream::{self, Stream, StreamExt};
use tonic::Status;

/// The largest body a message should carry: gRPC clients refuse messages
/// over 4 MiB unless told otherwise (arrow-flight aims at 2 MiB as well).
pub const MAX_MESSAGE_BYTES: usize = 2 * 1024 * 1024;

/// Encodes batches of `schema` as one Flight stream.
pub struct FlightEncoder {
    options: IpcWriteOptions,
    generator: IpcDataGenerator,
    dictionaries: DictionaryTracker,
    context: IpcWriteContext,
}

impl Default for FlightEncoder {
    fn default() -> Self {
        let mut context = IpcWriteContext::default();
        context.set_reserve_scratch(true);
        Self {
            options: IpcWriteOptions::default(),
            generator: IpcDataGenerator::default(),
            dictionaries: DictionaryTracker::new(false),
            context,
        }
    }
}

impl FlightEncoder {
    /// The stream's first message. Dictionary columns get their IDs here,
    /// which the dictionaries sent with later batches refer to.
    pub fn schema(&mut self, schema: &arrow_schema::Schema) -> FlightData {
        self.generator
            .schema_to_bytes_with_dictionary_tracker(schema, &mut self.dictionaries, &self.options)
            .into()
    }

    /// The messages of one batch: its dictionaries, then its rows (in
    /// slices when it is too large for one message).
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<FlightData>, Status> {
        let mut messages = Vec::new();
        for slice in slices(batch) {
            let (dictionaries, data) = self
                .generator
                .encode(&slice, &mut self.dictionaries, &self.options, &mut self.context)
                .map_err(|e| Status::internal(format!("encoding an export batch: {e}")))?;
            messages.extend(dictionaries.into_iter().map(FlightData::from));
            messages.push(data.into());
        }
        Ok(messages)
    }
}

/// `batch` in as few row slices as keep each under [`MAX_MESSAGE_BYTES`]
/// (slicing copies nothing).
fn slices(batch: &RecordBatch) -> Vec<RecordBatch> {
    let bytes: usize = batch.columns().iter().map(|c| c.get_buffer_memory_size()).sum();
    let pieces = bytes.div_ceil(MAX_MESSAGE_BYTES).max(1);
    if pieces == 1 {
        return vec![batch.clone()];
    }
    let rows = batch.num_rows();
    let per_piece = rows.div_ceil(pieces).max(1);
    (0..rows)
        .step_by(per_piece)
        .map(|offset| batch.slice(offset, per_piece.min(rows - offset)))
        .collect()
}

/// The Flight stream of `batches` of `schema`: the schema, then each
/// batch's messages; a failed batch ends the stream with its status.
pub fn flight_stream(
    schema: SchemaRef,
    batches: impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static,
) -> impl Stream<Item = Result<FlightData, Status>> + Send + 'static {
    let mut encoder = FlightEncoder::default();
    let first = encoder.schema(&schema);
    let rest = batches.flat_map(move |batch| {
        let messages = batch.map_err(Status::from).and_then(|batch| encoder.batch(&batch));
        match messages {
            Ok(messages) => stream::iter(messages.into_iter().map(Ok).collect::<Vec<_>>()),
            Err(status) => stream::iter(vec![Err(status)]),
        }
    });
    stream::once(async move { Ok(first) }).chain(rest)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::types::UInt8Type;
    use arrow_array::{ArrayRef, DictionaryArray, StringArray, UInt8Array, UInt32Array};
    use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
    use arrow_schema::{DataType, Field, Schema};
    use futures::TryStreamExt;

    use super::*;

    fn batch(rows: usize, text: &str) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::UInt32, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let n: ArrayRef = Arc::new(UInt32Array::from_iter_values(0..rows as u32));
        let s: ArrayRef = Arc::new(StringArray::from_iter(
            (0..rows).map(|i| (i % 7 != 0).then(|| format!("{text}{i}"))),
        ));
        RecordBatch::try_new(schema, vec![n, s]).expect("batch")
    }

    async fn round_trip(batches: Vec<RecordBatch>) -> Vec<RecordBatch> {
        let schema = batches[0].schema();
        let messages = flight_stream(schema, stream::iter(batches.into_iter().map(Ok)));
        let decoder = FlightDataDecoder::new(messages.map_err(FlightError::from));
        let decoded: Vec<_> = decoder.try_collect().await.expect("decodes");
        assert!(matches!(decoded[0].payload, DecodedPayload::Schema(_)), "the schema comes first");
        decoded
            .into_iter()
            .filter_map(|m| match m.payload {
                DecodedPayload::RecordBatch(b) => Some(b),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn batches_decode_as_they_were_sent_batch_after_batch() {
        // Later bodies are written into the room the first one left.
        let sent = vec![batch(1000, "a"), batch(10, "bb"), batch(3000, "ccc")];
        let got = round_trip(sent.clone()).await;
        assert_eq!(got, sent);
    }

    #[tokio::test]
    async fn a_batch_too_large_for_one_message_arrives_in_slices() {
        let big = batch(200_000, "a value long enough to pass two mebibytes ");
        let got = round_trip(vec![big.clone()]).await;
        assert!(got.len() > 1, "sliced into {} messages", got.len());
        let mut offset = 0;
        for piece in &got {
            assert_eq!(piece, &big.slice(offset, piece.num_rows()), "rows from {offset}");
            offset += piece.num_rows();
        }
        assert_eq!(offset, big.num_rows());
    }

    #[tokio::test]
    async fn dictionary_columns_arrive_with_their_dictionaries() {
        let keys = UInt8Array::from(vec![Some(0), None, Some(1), Some(0)]);
        let values: ArrayRef = Arc::new(StringArray::from(vec!["active", "moved_out"]));
        let labels: ArrayRef = Arc::new(DictionaryArray::<UInt8Type>::try_new(keys, values).expect("dictionary"));
        let field = Field::new("status", labels.data_type().clone(), true);
        let sent = RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![labels]).expect("batch");
        let got = round_trip(vec![sent.clone(), sent.clone()]).await;
        assert_eq!(got, vec![sent.clone(), sent]);
    }

    #[tokio::test]
    async fn a_failed_batch_ends_the_stream_with_its_status() {
        let schema = batch(1, "a").schema();
        let items = vec![
            Ok(batch(5, "a")),
            Err(FlightError::Tonic(Box::new(Status::unavailable("source gone")))),
        ];
        let messages: Vec<_> = flight_stream(schema, stream::iter(items)).collect().await;
        assert_eq!(messages.len(), 3);
        let status = messages[2].as_ref().expect_err("the failure is last");
        assert_eq!(status.code(), tonic::Code::Unavailable);
    }
}
