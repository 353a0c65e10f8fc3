use crate::cli::{ServeArgs, SyncArg};
use crate::error::{Error, Result};
use crate::http::{self, server, App, Config};
use crate::store::{Durability, Location, OpenMode, Store};
use std::path::PathBuf;
use std::sync::Arc;

/// A demo database in the temp directory, removed when the server stops.
struct DemoDb(PathBuf);

impl Drop for DemoDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `--login-throttle USER,ADDRESS,SECS`.
fn throttle_policy(arg: &str) -> Result<http::auth::ThrottlePolicy> {
    let bad = || {
        Error::bad(format!(
            "--login-throttle {arg:?}: expected three positive whole numbers USER,ADDRESS,SECS, like 10,50,300"
        ))
    };
    let n: Vec<u64> = arg
        .split(',')
        .map(|p| p.trim().parse::<u64>().ok().filter(|&n| n > 0))
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let [user, address, secs] = n[..] else {
        return Err(bad());
    };
    Ok(http::auth::ThrottlePolicy {
        per_user: u32::try_from(user).map_err(|_| bad())?,
        per_address: u32::try_from(address).map_err(|_| bad())?,
        window: std::time::Duration::from_secs(secs),
    })
}

/// Purges the trash of what was deleted more than `days` ago (SPEC 10.2),
/// now and then every hour, on a thread and a connection of its own; a
/// failure is logged and tried again at the next hour.
fn purge_now_and_hourly(db: Location, durability: Durability, days: u32) {
    std::thread::spawn(move || loop {
        let before = super::trash::days_ago(days);
        let actor = crate::store::Actor {
            name: format!("server (--trash-days {days})"),
            address: None,
        };
        let purged = Store::open_with(&db, OpenMode::Existing, durability)
            .and_then(|mut store| store.write(|tx| tx.purge(None, Some(&before), &actor)));
        match purged {
            Ok(0) => {}
            Ok(n) => eprintln!(
                "sumatra-server: purged {n} record(s) deleted before {before} UTC from the trash"
            ),
            Err(e) => {
                eprintln!("sumatra-server: purging the trash failed ({e}); trying again in an hour")
            }
        }
        std::thread::sleep(std::time::Duration::from_secs(3600));
    });
}

pub fn serve(db: &Location, args: ServeArgs) -> Result<()> {
    let prefix = http::normalise_prefix(&args.prefix)?;
    let throttle = throttle_policy(&args.login_throttle)?;
    let durability = match args.sync {
        SyncArg::Full => Durability::Full,
        SyncArg::Normal => Durability::Normal,
    };
    let mut _demo = None;
    let db = if args.demo {
        let path =
            std::env::temp_dir().join(format!("sumatra-server-demo-{}.db", std::process::id()));
        let guard = DemoDb(path.clone());
        let location = Location::File(path.clone());
        let mut store = Store::open(&location, OpenMode::Create)?;
        crate::transfer::load(
            &mut store,
            &["haggling".into(), "permissions".into()],
            false,
            false,
            &|| {},
        )?;
        eprintln!(
            "demo database at {} (removed on exit); log in as testuser / abc123",
            path.display()
        );
        _demo = Some(guard);
        location
    } else {
        // A PostgreSQL pool holds a connection per handler thread, and one
        // for each streamed answer (CSV, table JSON) beside them: those
        // take at most half the handler threads' share (SPEC 7.6).
        let workers = args.workers.max(1);
        crate::store::set_pool_size(workers + workers.div_ceil(2) + 2);
        // Opening checks the database and applies pending migrations before we listen.
        Store::open_with(db, OpenMode::Existing, durability)?;
        // Statements of requests have the deadline; a migration above did
        // not (the pool it used is made again for serving).
        crate::store::set_statement_timeout(args.query_timeout);
        db.clone()
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(server::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            config: server::tls_config(cert, key)?,
        }),
        _ => None,
    };
    if let Some(t) = &tls {
        crate::metrics::get()
            .tls_not_after
            .set(server::not_after(&t.cert).unwrap_or(0));
    }
    let listener = std::net::TcpListener::bind(args.bind)
        .map_err(|e| Error::bad(format!("cannot listen on {}: {e}", args.bind)))?;
    let addr = listener.local_addr()?;
    if tls.is_none() && !addr.ip().is_loopback() {
        eprintln!(
            "sumatra-server: WARNING: listening on {addr} without TLS: passwords cross the network in clear. \
             Use --tls-cert/--tls-key, or put a TLS reverse proxy in front (see README, Deployment)."
        );
    }
    let db_for_purge = db.clone();
    let app = App::new(Config {
        prefix: prefix.clone(),
        db,
        durability,
        throttle,
        fallback_host: addr.to_string(),
        workers: args.workers.max(1),
        trash_days: args.trash_days,
    })?;
    let limits = server::Limits {
        max_body: args.max_body,
        body_budget: args.body_budget,
        workers: args.workers.max(1),
        max_connections: args.max_connections.max(1),
        header_timeout: std::time::Duration::from_secs(args.header_timeout),
        body_timeout: std::time::Duration::from_secs(args.body_timeout),
        query_timeout: args.query_timeout,
        shutdown_grace: args.shutdown_grace,
        trusted_proxies: args.trust_proxy.clone(),
        json_log: args.log_format == crate::cli::LogFormat::Json,
        ..Default::default()
    };
    if let Some(bind) = args.metrics_bind {
        let metrics = std::net::TcpListener::bind(bind)
            .map_err(|e| Error::bad(format!("cannot listen on {bind} for metrics: {e}")))?;
        eprintln!(
            "sumatra-server: metrics at http://{}/metrics",
            metrics.local_addr()?
        );
        http::metrics::start(metrics, db_for_purge.clone(), durability);
    }
    if args.trash_days > 0 {
        purge_now_and_hourly(db_for_purge, durability, args.trash_days);
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("sumatra-server: listening on {scheme}://{addr}{prefix}");
    let app = Arc::new(app);
    app.write_token_uses();
    let handler: server::Handler = app;
    server::serve(listener, handler, limits, tls)?;
    Ok(())
}
