//! us-east-1 list prices the cost model bills with, each with the page it
//! was read from and the date ([`READ_ON`]). On-demand, no free tier, no
//! savings plan: what a buyer's first bill past the free tier shows.

/// When the pricing pages below were read (stored copies, via the `search` tool).
pub const READ_ON: &str = "2026-12-06";

/// Dollars per unit of each billed quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    /// API Gateway HTTP API, per request (first 300 million a month; 512 KB each).
    pub api_request: f64,
    /// Lambda, per invocation.
    pub lambda_request: f64,
    /// Lambda x86, per GB-second (billed per 1 ms).
    pub lambda_gb_second: f64,
    /// DynamoDB on-demand, per write request unit.
    pub write_unit: f64,
    /// DynamoDB on-demand, per read request unit.
    pub read_unit: f64,
    /// DynamoDB Streams, per `GetRecords` by a consumer other than Lambda (the pipe).
    pub stream_read: f64,
    /// EventBridge Pipes, per request after filtering (64 KB each).
    pub pipe_request: f64,
    /// SQS standard, per request (64 KB each; empty receives too).
    pub sqs_request: f64,
    /// S3 Standard, per PUT and per GET.
    pub s3_put: f64,
    pub s3_get: f64,
    /// Secrets Manager, per API call and per secret-month.
    pub secret_call: f64,
    pub secret_month: f64,
    /// CloudWatch Logs (Lambda's vended logs, first tier), per byte ingested.
    pub log_byte: f64,
    /// CloudWatch, per custom metric series-month and per standard alarm-month.
    pub metric_month: f64,
    pub alarm_month: f64,
}

const MILLION: f64 = 1_000_000.0;
const GB: f64 = 1_000_000_000.0;

impl Prices {
    #[must_use]
    pub fn us_east_1() -> Self {
        Self {
            api_request: 1.00 / MILLION,
            lambda_request: 0.20 / MILLION,
            lambda_gb_second: 0.000_016_666_7,
            write_unit: 0.625 / MILLION,
            read_unit: 0.125 / MILLION,
            stream_read: 0.02 / 100_000.0,
            pipe_request: 0.40 / MILLION,
            sqs_request: 0.40 / MILLION,
            s3_put: 0.005 / 1000.0,
            s3_get: 0.0004 / 1000.0,
            secret_call: 0.05 / 10_000.0,
            secret_month: 0.40,
            log_byte: 0.50 / GB,
            metric_month: 0.30,
            alarm_month: 0.10,
        }
    }
}

/// Each service's pricing page (and what was read there), for the table's notes.
pub const SOURCES: [(&str, &str, &str); 10] = [
    (
        "API Gateway",
        "https://aws.amazon.com/api-gateway/pricing/",
        "HTTP APIs $1.00 per million requests (first 300 M)",
    ),
    (
        "Lambda",
        "https://aws.amazon.com/lambda/pricing/",
        "$0.20 per million requests; x86 $0.0000166667 per GB-s, billed per 1 ms",
    ),
    (
        "DynamoDB",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "$0.625 per million WRU, $0.125 per million RRU",
    ),
    (
        "DynamoDB Streams",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CostOptimization_StreamsUsage.html",
        "GetRecords $0.02 per 100,000; free for Lambda consumers",
    ),
    (
        "EventBridge Pipes",
        "https://aws.amazon.com/eventbridge/pricing/",
        "$0.40 per million requests after filtering",
    ),
    (
        "SQS",
        "https://aws.amazon.com/sqs/pricing/",
        "standard $0.40 per million requests, empty receives included",
    ),
    (
        "S3",
        "https://aws.amazon.com/s3/pricing/",
        "Standard $0.005 per 1,000 PUT, $0.0004 per 1,000 GET",
    ),
    (
        "Secrets Manager",
        "https://aws.amazon.com/secrets-manager/pricing/",
        "$0.40 per secret-month, $0.05 per 10,000 API calls",
    ),
    (
        "CloudWatch Logs",
        "https://aws.amazon.com/cloudwatch/pricing/",
        "Lambda logs (vended, first 10 TB) $0.50 per GB ingested",
    ),
    (
        "CloudWatch metrics and alarms",
        "https://aws.amazon.com/cloudwatch/pricing/",
        "$0.30 per custom metric-month (first 10,000), $0.10 per standard alarm-month",
    ),
];
