//! What the server counts for Prometheus (SPEC 11.2), in one registry that
//! any room may add to (the transport, authentication, the group commit)
//! and that `serve --metrics-bind` exposes on a listener of its own. The
//! exposition format is written by `prometheus-client`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::OnceLock;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route's template (`/records/{project}/{label}/`), never the raw path.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub state: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Histograms<RouteLabels>,
    pub in_flight: Gauge,
    pub body_budget_in_use: Gauge,
    pub password_checks_waiting: Gauge,
    pub password_checks_refused: Counter,
    pub login_throttled: Counter,
    pub group_commit_batch: Histogram,
    pub pool_connections: Family<PoolLabels, Gauge>,
    pub pool_waiting: Gauge,
    pub records: Gauge,
    pub tls_not_after: Gauge,
}

fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sumatra");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by method, route template and status",
            requests.clone(),
        );
        let duration: Histograms<RouteLabels> = Family::new_with_constructor(seconds);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route template",
            duration.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "Requests being answered",
            in_flight.clone(),
        );
        let body_budget_in_use = Gauge::default();
        registry.register(
            "body_budget_in_use_bytes",
            "Bytes of request bodies held in memory now (of --body-budget)",
            body_budget_in_use.clone(),
        );
        let password_checks_waiting = Gauge::default();
        registry.register(
            "password_checks_waiting",
            "Password checks running or waiting for their turn",
            password_checks_waiting.clone(),
        );
        let password_checks_refused = Counter::default();
        registry.register(
            "password_checks_refused",
            "Logins answered 503 because the password-check queue was full",
            password_checks_refused.clone(),
        );
        let login_throttled = Counter::default();
        registry.register(
            "login_throttle_refusals",
            "Logins answered 429 after too many failures (--login-throttle)",
            login_throttled.clone(),
        );
        let group_commit_batch = Histogram::new(exponential_buckets(1.0, 2.0, 7));
        registry.register(
            "group_commit_batch_size",
            "Writes committed together in one SQLite transaction",
            group_commit_batch.clone(),
        );
        let pool_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "PostgreSQL connections of this process's pool, idle or in use",
            pool_connections.clone(),
        );
        let pool_waiting = Gauge::default();
        registry.register(
            "db_pool_waiting",
            "Requests of this process waiting now for a PostgreSQL connection of its pool",
            pool_waiting.clone(),
        );
        let records = Gauge::default();
        registry.register(
            "records",
            "Records in the store (every project; refreshed every minute)",
            records.clone(),
        );
        let tls_not_after = Gauge::default();
        registry.register(
            "tls_certificate_not_after_seconds",
            "When the served TLS certificate expires (Unix time; 0 without TLS)",
            tls_not_after.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        registry.register("build_info", "The running build (always 1)", build);
        Metrics {
            registry,
            requests,
            duration,
            in_flight,
            body_budget_in_use,
            password_checks_waiting,
            password_checks_refused,
            login_throttled,
            group_commit_batch,
            pool_connections,
            pool_waiting,
            records,
            tls_not_after,
        }
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// One answered request.
    pub fn request(&self, method: &str, route: &str, status: u16, took: std::time::Duration) {
        // A method nobody defined is one label, not one each (hyper takes
        // any token as a method).
        let method = match method {
            "GET" | "HEAD" | "PUT" | "POST" | "DELETE" | "OPTIONS" | "PATCH" => method,
            _ => "other",
        };
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        self.duration
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(took.as_secs_f64());
    }
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}
