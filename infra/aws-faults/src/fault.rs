//! What a fault does, and the error answers AWS gives, in AWS's shapes: the
//! JSON protocols' `{"__type": …, "message": …}` (DynamoDB, SQS with its
//! `x-amzn-query-error` header, Secrets Manager) and S3's XML `<Error>`.

use std::time::Duration;

use http_body_util::Full;
use hyper::Response;
use hyper::body::Bytes;

/// What the proxy does to a request a rule fires on.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answers this instead of the emulator; the request is not forwarded.
    Answer(ErrorAnswer),
    /// Forwards after this long.
    Delay(Duration),
    /// Never answers (longer than any timeout); nothing is forwarded.
    Stall,
    /// Forwards (the emulator does the work, a write lands), then drops the
    /// connection without an answer: the most dangerous case.
    ResetAfterForward,
}

/// An error answer as AWS sends it.
#[derive(Debug, Clone)]
pub struct ErrorAnswer {
    /// The error code (`SlowDown`), or `HTTP 500` for a bare 500.
    code: String,
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl ErrorAnswer {
    pub(crate) fn response(&self) -> Response<Full<Bytes>> {
        let mut response = Response::builder()
            .status(self.status)
            .header("content-type", self.content_type)
            .header("x-amzn-requestid", "fault-proxy");
        for (name, value) in &self.headers {
            response = response.header(*name, value);
        }
        response
            .body(Full::new(Bytes::from(self.body.clone())))
            .expect("a fixed status and ASCII headers")
    }
}

impl Fault {
    /// What kind of fault it is, for counting: the error code it answers
    /// (`ThrottlingException`, `SlowDown`, `HTTP 500` …), `delay`, `stall`
    /// or `reset`.
    #[must_use]
    pub fn kind(&self) -> &str {
        match self {
            Self::Answer(answer) => &answer.code,
            Self::Delay(_) => "delay",
            Self::Stall => "stall",
            Self::ResetAfterForward => "reset",
        }
    }

    /// DynamoDB's error `code` (`ProvisionedThroughputExceededException`,
    /// `ThrottlingException`: HTTP 400; `InternalServerError`: HTTP 500).
    #[must_use]
    pub fn dynamodb(code: &str) -> Self {
        let status = if code == "InternalServerError" {
            500
        } else {
            400
        };
        Self::Answer(ErrorAnswer {
            code: code.to_owned(),
            status,
            content_type: "application/x-amz-json-1.0",
            headers: Vec::new(),
            body: json_error(
                &format!("com.amazonaws.dynamodb.v20120810#{code}"),
                "injected by the fault proxy",
            ),
        })
    }

    /// DynamoDB's HTTP 500 with no error code at all.
    #[must_use]
    pub fn http_500() -> Self {
        Self::Answer(ErrorAnswer {
            code: "HTTP 500".to_owned(),
            status: 500,
            content_type: "application/x-amz-json-1.0",
            headers: Vec::new(),
            body: String::new(),
        })
    }

    /// SQS (JSON protocol) failing: `InternalFailure` (500) or
    /// `RequestThrottled` (400).
    #[must_use]
    pub fn sqs(code: &str) -> Self {
        let (status, side) = if code == "InternalFailure" {
            (500, "Receiver")
        } else {
            (400, "Sender")
        };
        Self::Answer(ErrorAnswer {
            code: code.to_owned(),
            status,
            content_type: "application/x-amz-json-1.0",
            headers: vec![("x-amzn-query-error", format!("{code};{side}"))],
            body: json_error(
                &format!("com.amazonaws.sqs#{code}"),
                "injected by the fault proxy",
            ),
        })
    }

    /// S3 failing: `SlowDown` (503) or `InternalError` (500).
    #[must_use]
    pub fn s3(code: &str) -> Self {
        let status = if code == "SlowDown" { 503 } else { 500 };
        Self::Answer(ErrorAnswer {
            code: code.to_owned(),
            status,
            content_type: "application/xml",
            headers: Vec::new(),
            body: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
                 <Message>injected by the fault proxy</Message>\
                 <RequestId>fault-proxy</RequestId></Error>"
            ),
        })
    }

    /// Secrets Manager throttling (HTTP 400, `ThrottlingException`).
    #[must_use]
    pub fn secrets_manager_throttling() -> Self {
        Self::Answer(ErrorAnswer {
            code: "ThrottlingException".to_owned(),
            status: 400,
            content_type: "application/x-amz-json-1.1",
            headers: Vec::new(),
            body: json_error("ThrottlingException", "Rate exceeded"),
        })
    }
}

fn json_error(kind: &str, message: &str) -> String {
    format!("{{\"__type\":\"{kind}\",\"message\":\"{message}\"}}")
}

/// When a fault is given: to which operation, how often, how many times.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `None`: every operation.
    operation: Option<String>,
    fault: Fault,
    /// The share of matching requests it fires on, in [0, 1].
    rate: f64,
    /// How many more times it may fire; `None`: no limit.
    left: Option<u64>,
    /// Only requests whose body holds this text (one write among others of
    /// the same operation: a save's `:progress`, not a claim).
    containing: Option<String>,
}

impl Rule {
    /// `fault` on every request for `operation` (`PutItem`,
    /// `TransactWriteItems`, `SendMessage`, `GetSecretValue`, `PUT`…).
    #[must_use]
    pub fn on(operation: &str, fault: Fault) -> Self {
        Self {
            operation: Some(operation.to_owned()),
            fault,
            rate: 1.0,
            left: None,
            containing: None,
        }
    }

    /// `fault` on every request, whatever its operation.
    #[must_use]
    pub fn on_every_operation(fault: Fault) -> Self {
        Self {
            operation: None,
            fault,
            rate: 1.0,
            left: None,
            containing: None,
        }
    }

    /// Fires on this share of the matching requests only (drawn from the
    /// proxy's seed).
    #[must_use]
    pub fn at_rate(mut self, rate: f64) -> Self {
        self.rate = rate.clamp(0.0, 1.0);
        self
    }

    /// Fires at most `times` times, then lets requests pass.
    #[must_use]
    pub fn times(mut self, times: u64) -> Self {
        self.left = Some(times);
        self
    }

    /// Fires only on requests whose body holds `text`.
    #[must_use]
    pub fn containing(mut self, text: &str) -> Self {
        self.containing = Some(text.to_owned());
        self
    }

    /// The fault, when this rule fires on a request for `operation` with `body`.
    pub(crate) fn fire(
        &mut self,
        operation: &str,
        body: &[u8],
        draw: impl FnOnce() -> f64,
    ) -> Option<Fault> {
        if self.operation.as_deref().is_some_and(|op| op != operation) || self.left == Some(0) {
            return None;
        }
        if let Some(text) = &self.containing
            && !body
                .windows(text.len())
                .any(|window| window == text.as_bytes())
        {
            return None;
        }
        if self.rate < 1.0 && draw() >= self.rate {
            return None;
        }
        if let Some(left) = &mut self.left {
            *left -= 1;
        }
        Some(self.fault.clone())
    }
}
