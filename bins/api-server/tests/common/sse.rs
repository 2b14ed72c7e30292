//! Reading a Server-Sent Events stream in a test: frames as `(event, id, data)`.

use futures_util::{Stream, StreamExt};
use serde_json::Value;
use std::time::Duration;

/// One frame of the stream.
#[derive(Clone, Debug)]
pub struct Frame {
    pub event: String,
    pub id: Option<i64>,
    pub data: Value,
}

/// An open stream and what was read of it that is not a whole frame yet.
pub struct Sse<S> {
    body: S,
    buffer: String,
}

impl<S: Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin> Sse<S> {
    pub fn new(body: S) -> Self {
        Sse {
            body,
            buffer: String::new(),
        }
    }

    /// The next frame with an event (comments are skipped), or None when `timeout` passes first.
    pub async fn next(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let text: String = self.buffer.drain(..end + 2).collect();
                let mut frame = Frame {
                    event: String::new(),
                    id: None,
                    data: Value::Null,
                };
                for line in text.lines() {
                    if let Some(k) = line.strip_prefix("event: ") {
                        frame.event = k.to_owned();
                    } else if let Some(id) = line.strip_prefix("id: ") {
                        frame.id = id.parse().ok();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        frame.data = serde_json::from_str(d).unwrap_or(Value::Null);
                    }
                }
                if !frame.event.is_empty() {
                    return Some(frame);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??
                .ok()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// Opens `url`'s stream, with `Last-Event-ID` when given; panics unless it answers 200.
pub async fn open(
    http: &reqwest::Client,
    url: &str,
    last_event_id: Option<i64>,
) -> Sse<impl Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin + use<>> {
    let mut request = http.get(url);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id.to_string());
    }
    let resp = request.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    Sse::new(resp.bytes_stream())
}
