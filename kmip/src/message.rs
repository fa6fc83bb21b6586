//! Request and response messages, headers and batch items (KMIP 1.4 §7, KMIP 2.1 §8–9).
//!
//! Payloads stay as TTLV here; `ops::*` read them into typed requests, because how a
//! payload reads depends on the operation and on the negotiated protocol version.

use crate::enums::{BatchErrorContinuationOption, Operation, ResultReason, ResultStatus};
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};
use crate::version::ProtocolVersion;

/// Request Header (KMIP 2.1 §8.4, Table 221).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHeader {
    /// Protocol Version.
    pub protocol_version: ProtocolVersion,
    /// Maximum Response Size, in bytes.
    pub maximum_response_size: Option<i32>,
    /// Client Correlation Value (1.4+), echoed in the response.
    pub client_correlation_value: Option<String>,
    /// Server Correlation Value (1.4+), echoed in the response.
    pub server_correlation_value: Option<String>,
    /// Authentication structure (Credential), left as TTLV for the server's identity mapping.
    pub authentication: Option<Ttlv>,
    /// Batch Error Continuation Option (Stop when absent).
    pub batch_error_continuation_option: Option<BatchErrorContinuationOption>,
    /// Batch Order Option.
    pub batch_order_option: Option<bool>,
    /// Time Stamp.
    pub time_stamp: Option<i64>,
    /// Batch Count.
    pub batch_count: i32,
}

/// One Batch Item of a request (KMIP 2.1 §8.4, Table 222).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestBatchItem {
    /// Operation.
    pub operation: Operation,
    /// Unique Batch Item ID, echoed in the matching response item.
    pub unique_batch_item_id: Option<Vec<u8>>,
    /// Request Payload.
    pub payload: Ttlv,
}

/// Request Message (KMIP 2.1 §8.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestMessage {
    /// Request Header.
    pub header: RequestHeader,
    /// Batch Items, at least one.
    pub batch_items: Vec<RequestBatchItem>,
}

/// Why a request message could not be read; enough is kept to answer the client
/// with the protocol version it asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request message: {source}")]
pub struct MessageError {
    /// The protocol version from the header, when it could be read.
    pub protocol_version: Option<ProtocolVersion>,
    /// What was wrong.
    #[source]
    pub source: FieldError,
}

fn opt_text(parent: &Ttlv, tag: Tag) -> Result<Option<String>, FieldError> {
    opt(parent, tag, |t| t.as_text().map(str::to_owned))
}

fn opt<'a, T>(
    parent: &'a Ttlv,
    tag: Tag,
    read: impl FnOnce(&'a Ttlv) -> Result<T, FieldError>,
) -> Result<Option<T>, FieldError> {
    parent.find(tag).map(read).transpose()
}

impl RequestMessage {
    /// Reads a Request Message from a decoded tree.
    pub fn from_ttlv(item: &Ttlv) -> Result<Self, MessageError> {
        let fail = |source, protocol_version| MessageError { protocol_version, source };
        if item.tag != Tag::REQUEST_MESSAGE {
            return Err(fail(
                FieldError::Invalid { tag: item.tag, reason: "expected a Request Message" },
                None,
            ));
        }
        let h = item.require(Tag::REQUEST_HEADER).map_err(|e| fail(e, None))?;
        let version = h
            .require(Tag::PROTOCOL_VERSION)
            .and_then(ProtocolVersion::from_ttlv)
            .map_err(|e| fail(e, None))?;
        let read = || -> Result<RequestMessage, FieldError> {
            let header = RequestHeader {
                protocol_version: version,
                maximum_response_size: opt(h, Tag::MAXIMUM_RESPONSE_SIZE, Ttlv::as_i32)?,
                client_correlation_value: opt_text(h, Tag::CLIENT_CORRELATION_VALUE)?,
                server_correlation_value: opt_text(h, Tag::SERVER_CORRELATION_VALUE)?,
                authentication: h.find(Tag::AUTHENTICATION).cloned(),
                batch_error_continuation_option: opt(
                    h,
                    Tag::BATCH_ERROR_CONTINUATION_OPTION,
                    |t| t.as_enum().map(BatchErrorContinuationOption),
                )?,
                batch_order_option: opt(h, Tag::BATCH_ORDER_OPTION, Ttlv::as_bool)?,
                time_stamp: opt(h, Tag::TIME_STAMP, Ttlv::as_datetime)?,
                batch_count: h.require(Tag::BATCH_COUNT)?.as_i32()?,
            };
            let mut batch_items = Vec::new();
            for bi in item.find_all(Tag::BATCH_ITEM) {
                let operation = Operation(bi.require(Tag::OPERATION)?.as_enum()?);
                let unique_batch_item_id =
                    opt(bi, Tag::UNIQUE_BATCH_ITEM_ID, |t| t.as_bytes().map(<[u8]>::to_vec))?;
                let payload = bi
                    .find(Tag::REQUEST_PAYLOAD)
                    .cloned()
                    .unwrap_or_else(|| Ttlv::structure(Tag::REQUEST_PAYLOAD, vec![]));
                batch_items.push(RequestBatchItem { operation, unique_batch_item_id, payload });
            }
            if batch_items.is_empty() {
                return Err(FieldError::Missing { parent: item.tag, tag: Tag::BATCH_ITEM });
            }
            if usize::try_from(header.batch_count).ok() != Some(batch_items.len()) {
                return Err(FieldError::Invalid {
                    tag: Tag::BATCH_COUNT,
                    reason: "Batch Count differs from the number of Batch Items",
                });
            }
            Ok(RequestMessage { header, batch_items })
        };
        read().map_err(|e| fail(e, Some(version)))
    }

    /// Encodes this message as a tree (used by clients and tests).
    pub fn to_ttlv(&self) -> Ttlv {
        let h = &self.header;
        let mut header = vec![h.protocol_version.to_ttlv()];
        if let Some(v) = h.maximum_response_size {
            header.push(Ttlv::new(Tag::MAXIMUM_RESPONSE_SIZE, Value::Integer(v)));
        }
        if let Some(v) = &h.client_correlation_value {
            header.push(Ttlv::new(Tag::CLIENT_CORRELATION_VALUE, Value::TextString(v.clone())));
        }
        if let Some(v) = &h.server_correlation_value {
            header.push(Ttlv::new(Tag::SERVER_CORRELATION_VALUE, Value::TextString(v.clone())));
        }
        if let Some(v) = &h.authentication {
            header.push(v.clone());
        }
        if let Some(v) = h.batch_error_continuation_option {
            header.push(Ttlv::new(Tag::BATCH_ERROR_CONTINUATION_OPTION, Value::Enumeration(v.0)));
        }
        if let Some(v) = h.batch_order_option {
            header.push(Ttlv::new(Tag::BATCH_ORDER_OPTION, Value::Boolean(v)));
        }
        if let Some(v) = h.time_stamp {
            header.push(Ttlv::new(Tag::TIME_STAMP, Value::DateTime(v)));
        }
        header.push(Ttlv::new(Tag::BATCH_COUNT, Value::Integer(h.batch_count)));
        let mut children = vec![Ttlv::structure(Tag::REQUEST_HEADER, header)];
        for bi in &self.batch_items {
            let mut item = vec![Ttlv::new(Tag::OPERATION, Value::Enumeration(bi.operation.0))];
            if let Some(id) = &bi.unique_batch_item_id {
                item.push(Ttlv::new(Tag::UNIQUE_BATCH_ITEM_ID, Value::ByteString(id.clone())));
            }
            item.push(bi.payload.clone());
            children.push(Ttlv::structure(Tag::BATCH_ITEM, item));
        }
        Ttlv::structure(Tag::REQUEST_MESSAGE, children)
    }
}

/// Response Header (KMIP 2.1 §8.5, Table 223).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHeader {
    /// Protocol Version.
    pub protocol_version: ProtocolVersion,
    /// Time Stamp.
    pub time_stamp: i64,
    /// Client Correlation Value, echoed from the request.
    pub client_correlation_value: Option<String>,
    /// Server Correlation Value.
    pub server_correlation_value: Option<String>,
    /// Batch Count.
    pub batch_count: i32,
}

/// One Batch Item of a response (KMIP 2.1 §8.5, Table 224).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseBatchItem {
    /// Operation, echoed from the request item when it was readable.
    pub operation: Option<Operation>,
    /// Unique Batch Item ID, echoed from the request item.
    pub unique_batch_item_id: Option<Vec<u8>>,
    /// Result Status.
    pub result_status: ResultStatus,
    /// Result Reason, required when the status is not Success.
    pub result_reason: Option<ResultReason>,
    /// Result Message.
    pub result_message: Option<String>,
    /// Response Payload.
    pub payload: Option<Ttlv>,
}

impl ResponseBatchItem {
    /// A successful item with `payload` (children of the Response Payload).
    pub fn success(operation: Operation, payload: Vec<Ttlv>) -> Self {
        ResponseBatchItem {
            operation: Some(operation),
            unique_batch_item_id: None,
            result_status: ResultStatus::SUCCESS,
            result_reason: None,
            result_message: None,
            payload: Some(Ttlv::structure(Tag::RESPONSE_PAYLOAD, payload)),
        }
    }

    /// A failed item.
    pub fn failure(operation: Option<Operation>, reason: ResultReason, message: String) -> Self {
        ResponseBatchItem {
            operation,
            unique_batch_item_id: None,
            result_status: ResultStatus::OPERATION_FAILED,
            result_reason: Some(reason),
            result_message: Some(message),
            payload: None,
        }
    }

    fn from_ttlv(bi: &Ttlv) -> Result<Self, FieldError> {
        Ok(ResponseBatchItem {
            operation: opt(bi, Tag::OPERATION, |t| t.as_enum().map(Operation))?,
            unique_batch_item_id: opt(bi, Tag::UNIQUE_BATCH_ITEM_ID, |t| {
                t.as_bytes().map(<[u8]>::to_vec)
            })?,
            result_status: ResultStatus(bi.require(Tag::RESULT_STATUS)?.as_enum()?),
            result_reason: opt(bi, Tag::RESULT_REASON, |t| t.as_enum().map(ResultReason))?,
            result_message: opt_text(bi, Tag::RESULT_MESSAGE)?,
            payload: bi.find(Tag::RESPONSE_PAYLOAD).cloned(),
        })
    }
}

/// Response Message (KMIP 2.1 §8.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseMessage {
    /// Response Header.
    pub header: ResponseHeader,
    /// Batch Items.
    pub batch_items: Vec<ResponseBatchItem>,
}

impl ResponseMessage {
    /// Encodes this message as a tree.
    pub fn to_ttlv(&self) -> Ttlv {
        let h = &self.header;
        let mut header = vec![
            h.protocol_version.to_ttlv(),
            Ttlv::new(Tag::TIME_STAMP, Value::DateTime(h.time_stamp)),
        ];
        if let Some(v) = &h.client_correlation_value {
            header.push(Ttlv::new(Tag::CLIENT_CORRELATION_VALUE, Value::TextString(v.clone())));
        }
        if let Some(v) = &h.server_correlation_value {
            header.push(Ttlv::new(Tag::SERVER_CORRELATION_VALUE, Value::TextString(v.clone())));
        }
        header.push(Ttlv::new(Tag::BATCH_COUNT, Value::Integer(h.batch_count)));
        let mut children = vec![Ttlv::structure(Tag::RESPONSE_HEADER, header)];
        for bi in &self.batch_items {
            let mut item = Vec::new();
            if let Some(op) = bi.operation {
                item.push(Ttlv::new(Tag::OPERATION, Value::Enumeration(op.0)));
            }
            if let Some(id) = &bi.unique_batch_item_id {
                item.push(Ttlv::new(Tag::UNIQUE_BATCH_ITEM_ID, Value::ByteString(id.clone())));
            }
            item.push(Ttlv::new(Tag::RESULT_STATUS, Value::Enumeration(bi.result_status.0)));
            if let Some(r) = bi.result_reason {
                item.push(Ttlv::new(Tag::RESULT_REASON, Value::Enumeration(r.0)));
            }
            if let Some(m) = &bi.result_message {
                item.push(Ttlv::new(Tag::RESULT_MESSAGE, Value::TextString(m.clone())));
            }
            if let Some(p) = &bi.payload {
                item.push(p.clone());
            }
            children.push(Ttlv::structure(Tag::BATCH_ITEM, item));
        }
        Ttlv::structure(Tag::RESPONSE_MESSAGE, children)
    }

    /// Reads a Response Message from a decoded tree (used by clients and tests).
    pub fn from_ttlv(item: &Ttlv) -> Result<Self, FieldError> {
        let h = item.require(Tag::RESPONSE_HEADER)?;
        Ok(ResponseMessage {
            header: ResponseHeader {
                protocol_version: ProtocolVersion::from_ttlv(h.require(Tag::PROTOCOL_VERSION)?)?,
                time_stamp: h.require(Tag::TIME_STAMP)?.as_datetime()?,
                client_correlation_value: opt_text(h, Tag::CLIENT_CORRELATION_VALUE)?,
                server_correlation_value: opt_text(h, Tag::SERVER_CORRELATION_VALUE)?,
                batch_count: h.require(Tag::BATCH_COUNT)?.as_i32()?,
            },
            batch_items: item
                .find_all(Tag::BATCH_ITEM)
                .map(ResponseBatchItem::from_ttlv)
                .collect::<Result<_, _>>()?,
        })
    }
}
