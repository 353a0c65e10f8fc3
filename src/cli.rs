//! The command line, defined once: `--help`, the man pages (`man/`) and the
//! dispatch in `commands` all come from these types.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "sumatra-server",
    version,
    about = "A record store server for the Sumatra reproducibility tool",
    long_about = "A record store server for the Sumatra reproducibility tool.\n\n\
        Stores the records that `smt run` sends through Sumatra's HttpRecordStore, \
        in an SQLite file (the default) or a PostgreSQL database, and serves them \
        as JSON to the client and as HTML to people.",
    after_help = "Quick start:\n  sumatra-server serve --demo          # a throw-away server with example data\n  \
        sumatra-server --db records.db init\n  \
        sumatra-server --db records.db useradd alice\n  \
        sumatra-server --db records.db grant alice MyProject --level admin\n  \
        sumatra-server --db records.db serve --bind 127.0.0.1:8000"
)]
pub struct Cli {
    /// The database: an SQLite file, or a PostgreSQL URL
    /// (postgresql://USER:PASSWORD@HOST:PORT/DBNAME, also postgres://,
    /// ?sslmode=disable|prefer, ?host=/path/to/socket).
    #[arg(
        long,
        global = true,
        env = "SUMATRA_DB",
        // The URL may hold a password: never print the value (SPEC 8).
        hide_env_values = true,
        default_value = "sumatra.db",
        value_name = "PATH|URL"
    )]
    pub db: crate::store::Location,

    /// Read the database (a path or a URL, as --db takes) from this file instead
    /// of --db: a PostgreSQL password then appears in neither `ps` nor the
    /// environment (systemd: LoadCredential=db:/etc/sumatra/db-url and
    /// SUMATRA_DB_FILE=%d/db).
    #[arg(long, global = true, env = "SUMATRA_DB_FILE", value_name = "FILE")]
    pub db_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database, or bring an older one up to date (safe to repeat).
    ///
    /// Only init changes a database's schema: every other command refuses an
    /// older one. Before migrating an SQLite file, init copies it beside itself
    /// (the copy's name is printed); a PostgreSQL database is migrated only with
    /// --yes, after a pg_dump.
    #[command(after_help = "Examples:\n  sumatra-server --db records.db init\n  \
        pg_dump --format=custom --file=before.dump sumatra && sumatra-server init --yes")]
    Init {
        /// Migrate a PostgreSQL database at an older schema (back it up first).
        #[arg(long)]
        yes: bool,
    },

    /// Add a user; the password is asked twice, or read from standard input.
    #[command(
        after_help = "Examples:\n  sumatra-server useradd alice\n  printf '%s\\n' \"$PW\" | sumatra-server useradd alice --password-stdin"
    )]
    Useradd(UserPassword),

    /// Change a user's password.
    #[command(after_help = "Example:\n  sumatra-server passwd alice")]
    Passwd(UserPassword),

    /// Remove a user; their permissions go, the records they wrote stay.
    #[command(after_help = "Example:\n  sumatra-server userdel alice")]
    Userdel {
        /// The user name.
        user: String,
    },

    /// List users and the projects each can access.
    #[command(after_help = "Example:\n  sumatra-server users")]
    Users,

    /// Give a user access to a project (created if missing).
    ///
    /// `grant anonymous PROJECT` makes the project readable by anyone.
    #[command(
        after_help = "Examples:\n  sumatra-server grant alice MyProject --level admin\n  sumatra-server grant anonymous MyProject"
    )]
    Grant {
        /// The user name (`anonymous` for everyone, read-only).
        user: String,
        /// The project id.
        project: String,
        /// What the user may do: read (GET), write (also PUT and DELETE records), admin (also grant and rename).
        #[arg(long, value_enum, default_value_t = LevelArg::Write)]
        level: LevelArg,
    },

    /// Take a user's access to a project away.
    #[command(after_help = "Example:\n  sumatra-server revoke alice MyProject")]
    Revoke {
        /// The user name.
        user: String,
        /// The project id.
        project: String,
    },

    /// List projects: id, name, record count, last update and who has access.
    #[command(after_help = "Example:\n  sumatra-server projects")]
    Projects,

    /// Load fixtures: Django `dumpdata` JSON or files written by `export`.
    ///
    /// A bare name (`haggling`, `permissions`) is a fixture built into the
    /// binary; anything else is a file path. All files load in one
    /// transaction: all or nothing. Loading the same data twice changes nothing.
    #[command(
        after_help = "Examples:\n  sumatra-server loaddata haggling permissions\n  python manage.py dumpdata > dump.json && sumatra-server loaddata dump.json"
    )]
    Loaddata {
        /// Fixture names or file paths.
        #[arg(required = true, value_name = "NAME_OR_PATH")]
        sources: Vec<String>,
        /// Report what would be created or changed, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Skip objects of models this tool does not know, instead of failing.
        #[arg(long)]
        ignore_unknown: bool,
    },

    /// Write records as JSON (all projects, or those named); `loaddata` reads it back.
    ///
    /// With exactly one PROJECT (and none of --full, --with-users, --with-trash) the output
    /// is a JSON array of that project's records in the API's record format,
    /// oldest first: the shape `smt export` writes and `smt import` reads.
    ///
    /// Otherwise the output is an export document that keeps projects apart and
    /// loads back into an empty database with nothing lost:
    /// {"sumatra_server_export": 1, "users": [{"username", "password", "email",
    /// "created"}], "projects": [{"id", "name", "description", "access": [{"user",
    /// "level"}], "records": [RECORD, ...], "trash": [...]}], "deleted_projects": [...],
    /// "history": [...]}. `users` and `access` are written only with --with-users; each
    /// project's `trash` with --with-trash or --with-users; `deleted_projects` and
    /// `history` too when every project is exported. Users are sorted by name,
    /// projects by id, records oldest first, one record a line: exporting what was
    /// loaded into an empty database gives the same bytes.
    #[command(
        after_help = "Examples:\n  sumatra-server export MyProject -o myproject.json      # a list of records\n  \
        sumatra-server export --with-users -o backup.json     # everything: users, trash, history\n  \
        sumatra-server export MyProject --with-trash -o p.json # a project with its deleted records\n  \
        sumatra-server --db new.db loaddata backup.json"
    )]
    Export {
        /// Projects to export (default: all).
        projects: Vec<String>,
        /// Write to this file instead of standard output (it appears only once complete).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Include users (with password hashes) and who has access at which level; with
        /// every project, the whole store: the trash and the history too.
        #[arg(long)]
        with_users: bool,
        /// Include the trash: each project's deleted records (and, with every project,
        /// the deleted projects).
        #[arg(long)]
        with_trash: bool,
        /// Write the export document even for a single project (keeps its name and description).
        #[arg(long)]
        full: bool,
        /// Replace FILE if it exists.
        #[arg(long, requires = "output")]
        force: bool,
    },

    /// Find a project's records: a query, sorted, as a table, CSV or JSON.
    ///
    /// The query language is the one of the web page's query box and of
    /// `?q=` (README, "Finding records"): fields (label, timestamp, reason,
    /// outcome, duration, user, main_file, version, executable,
    /// script_arguments, repository, stdout, tag, params.KEY, deps.NAME),
    /// operators = != < <= > >= ~ !~ in exists, combined with and, or, not
    /// and parentheses.
    #[command(after_help = "Examples:\n  \
        sumatra-server records NeuroSim 'params.n > 500 and tag = baseline'\n  \
        sumatra-server records NeuroSim 'deps.numpy exists' --sort -params.n --columns label,params.n,duration\n  \
        sumatra-server records NeuroSim --format csv > runs.csv")]
    Records {
        /// The project id.
        project: String,
        /// Which records (all when left out).
        query: Option<String>,
        /// Order by these fields, `-FIELD` for descending (default: newest first).
        #[arg(long, value_name = "KEYS", allow_hyphen_values = true)]
        sort: Option<String>,
        /// The columns to show (default: label, timestamp, reason, outcome,
        /// duration, tags, user, main_file, version and every parameter).
        #[arg(long, value_name = "KEYS")]
        columns: Option<String>,
        /// Show at most this many records.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// table (for a terminal), csv or json (for scripts).
        #[arg(long, value_enum, default_value_t = RecordsFormat::Table)]
        format: RecordsFormat,
    },

    /// What a record was made from and everything that used its outputs,
    /// linked through the digests of their files, in every project.
    #[command(
        after_help = "Examples:\n  sumatra-server lineage NeuroSim 20261205-220231\n  \
          sumatra-server lineage NeuroSim 20261205-220231 --direction down --depth 10\n  \
          sumatra-server lineage NeuroSim 20261205-220231 --format dot | dot -Tsvg > lineage.svg"
    )]
    Lineage {
        /// The project id.
        project: String,
        /// The record's label.
        label: String,
        /// up (what it was made from), down (what used it) or both.
        #[arg(long, value_enum, default_value_t = DirectionArg::Both)]
        direction: DirectionArg,
        /// How many links away, at most 20.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
        depth: u32,
        /// table (for a terminal), json, dot (Graphviz), prov (W3C
        /// PROV-JSON) or ro-crate (Process Run Crate metadata).
        #[arg(long, value_enum, default_value_t = LineageFormat::Table)]
        format: LineageFormat,
        /// The server's records URL (like https://host/records/): prov and
        /// ro-crate then name each record by its URL, not by
        /// urn:sumatra:record:PROJECT/LABEL.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },

    /// Which runs made or used these files: each is hashed as Sumatra does
    /// (SHA-1 of its bytes) and looked up in every project.
    #[command(
        after_help = "Examples:\n  sumatra-server whence Data/20261205-220231/result.txt\n  \
          sumatra-server whence --digest e56ef4af36fc0123456789abcdef0123456789ab"
    )]
    Whence {
        /// Local files to look up.
        files: Vec<PathBuf>,
        /// A SHA-1 digest to look up instead of a file (repeatable).
        #[arg(long, value_name = "SHA1")]
        digest: Vec<String>,
        /// table (for a terminal) or json (for scripts).
        #[arg(long, value_enum, default_value_t = WhenceFormat::Table)]
        format: WhenceFormat,
    },

    /// Change a project's name or description, or delete it (its records
    /// go to the trash, restorable with `restore`).
    #[command(
        after_help = "Examples:\n  sumatra-server project MyProject --name \"Market simulations\" --description \"Haggling runs of 2026\"\n  \
          sumatra-server project OldProject --delete"
    )]
    Project {
        /// The project id.
        project: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new description.
        #[arg(long)]
        description: Option<String>,
        /// Delete the project: its records go to the trash.
        #[arg(long, conflicts_with_all = ["name", "description"])]
        delete: bool,
    },

    /// The trash: deleted records (of one project, or all), restorable
    /// until purged.
    #[command(
        after_help = "Examples:\n  sumatra-server trash MyProject\n  sumatra-server trash --purge            # what was deleted more than 30 days ago\n  \
          sumatra-server trash --purge --days 0   # everything in the trash"
    )]
    Trash {
        /// Only this project's trash.
        project: Option<String>,
        /// Erase what was deleted more than --days ago.
        #[arg(long)]
        purge: bool,
        /// With --purge: how old, in days (at most 36500).
        #[arg(long, default_value_t = 30, requires = "purge",
              value_parser = clap::value_parser!(u32).range(0..=36500))]
        days: u32,
        /// table (for a terminal) or json (for scripts).
        #[arg(long, value_enum, default_value_t = WhenceFormat::Table)]
        format: WhenceFormat,
    },

    /// Bring deleted records back from the trash.
    #[command(
        after_help = "Examples:\n  sumatra-server restore MyProject 20261205-220231\n  \
          sumatra-server restore MyProject --tag baseline\n  \
          sumatra-server restore MyProject --since \"2026-12-05 09:00:00\"\n  \
          sumatra-server restore MyProject 20261205-220231 --as 20261205-220231-old"
    )]
    Restore {
        /// The project id.
        project: String,
        /// Labels to restore (the latest deleted record of each).
        labels: Vec<String>,
        /// Every record in the trash with this tag.
        #[arg(long, conflicts_with_all = ["labels", "since"])]
        tag: Option<String>,
        /// Every record deleted at or after this time (UTC, YYYY-MM-DD[ HH:MM:SS]).
        #[arg(long, conflicts_with = "labels")]
        since: Option<String>,
        /// Restore one record under this label (its own is in use again).
        #[arg(long = "as", value_name = "LABEL")]
        as_label: Option<String>,
    },

    /// Who changed what, and when: every change, newest first.
    #[command(
        after_help = "Examples:\n  sumatra-server history MyProject\n  sumatra-server history --since 2026-12-01 --format json"
    )]
    History {
        /// Only this project's history.
        project: Option<String>,
        /// Only changes at or after this time (UTC, YYYY-MM-DD[ HH:MM:SS]).
        #[arg(long)]
        since: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// table (for a terminal) or json (for scripts).
        #[arg(long, value_enum, default_value_t = WhenceFormat::Table)]
        format: WhenceFormat,
    },

    /// Tokens: scoped stand-ins for a user's password in `.smt/project` (SPEC 11.1).
    #[command(subcommand)]
    Token(TokenCommand),

    /// Is the service healthy? Exit 0 if so, 1 if not (for container checks without curl).
    ///
    /// With --url, asks a running server's P.health (plain HTTP, as a container
    /// check on the same host does); without, asks the database itself whether it
    /// answers within a second.
    #[command(
        after_help = "Examples:\n  sumatra-server healthcheck --url http://127.0.0.1:8000/records/.health\n  \
        sumatra-server --db records.db healthcheck"
    )]
    Healthcheck {
        /// The server's health URL (http://HOST:PORT/PREFIX/.health).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },

    /// Write a consistent copy of the database, even while the server runs.
    #[command(after_help = "Example:\n  sumatra-server backup /backups/sumatra-$(date +%F).db")]
    Backup {
        /// The new file to write.
        file: PathBuf,
    },

    /// Run the HTTP server (REST API for the Sumatra client, HTML for people).
    #[command(
        after_help = "Examples:\n  sumatra-server serve --demo\n  sumatra-server --db records.db serve --bind 127.0.0.1:8000 --prefix /records/"
    )]
    Serve(ServeArgs),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token for USER on one project; it is printed once, only its digest is kept.
    ///
    /// The token is the password of a store URL: the Sumatra client uses it unchanged
    /// (smt init --store http://USER:TOKEN@HOST/records/ ...). It grants at most its
    /// level on its project, and never more than USER holds there at the time of use.
    #[command(
        after_help = "Examples:\n  sumatra-server token create alice --project MyProject --name laptop\n  \
        sumatra-server token create alice --project MyProject --level read --expires 30d"
    )]
    Create {
        /// The user the token stands for.
        user: String,
        /// The one project it opens.
        #[arg(long)]
        project: String,
        /// read or write (never admin).
        #[arg(long, value_enum, default_value_t = TokenLevel::Write)]
        level: TokenLevel,
        /// How long it lasts: 90d, 12h, 2w, or never.
        #[arg(long, default_value = "90d", value_name = "DURATION")]
        expires: String,
        /// A name to tell it by (where it is used: "laptop", "cluster").
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List tokens (every user's, or one's): never the tokens themselves.
    #[command(
        after_help = "Examples:\n  sumatra-server token list\n  sumatra-server token list alice --format json"
    )]
    List {
        user: Option<String>,
        #[arg(long, value_enum, default_value_t = WhenceFormat::Table)]
        format: WhenceFormat,
    },
    /// End a token, by its id or by its value (a token found leaked).
    #[command(
        after_help = "Examples:\n  sumatra-server token revoke 3\n  sumatra-server token revoke --value smt_..."
    )]
    Revoke {
        /// The token's id (as `token list` shows).
        #[arg(required_unless_present = "value", conflicts_with = "value")]
        id: Option<i64>,
        /// The token itself: only its digest is looked up.
        #[arg(long, value_name = "TOKEN")]
        value: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenLevel {
    Read,
    Write,
}

/// How `records` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordsFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct UserPassword {
    /// The user name.
    pub user: String,
    /// Read the password from the first line of standard input instead of asking.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    Read,
    Write,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncArg {
    Full,
    Normal,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DirectionArg {
    Up,
    Down,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LineageFormat {
    Table,
    Json,
    Dot,
    Prov,
    #[value(name = "ro-crate")]
    RoCrate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WhenceFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address or host name, and port, to listen on (port 0 picks a free
    /// port): 127.0.0.1:8000, localhost:8000, [::1]:8000, 0.0.0.0:8000.
    #[arg(long, default_value = "127.0.0.1:8000", value_name = "ADDR", value_parser = bind_address, env = "SUMATRA_BIND")]
    pub bind: SocketAddr,
    /// URL path under which the API and pages live.
    #[arg(
        long,
        default_value = "/records/",
        value_name = "PATH",
        env = "SUMATRA_PREFIX"
    )]
    pub prefix: String,
    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, default_value_t = 16 * 1024 * 1024, value_name = "BYTES", env = "SUMATRA_MAX_BODY")]
    pub max_body: usize,
    /// Bytes of request bodies held in memory at once, over all
    /// connections (at least --max-body); further uploads wait their turn.
    #[arg(long, default_value_t = 64 * 1024 * 1024, value_name = "BYTES", env = "SUMATRA_BODY_BUDGET")]
    pub body_budget: usize,
    /// Serve a throw-away database loaded with the example fixtures
    /// (user testuser, password abc123); --db is ignored.
    #[arg(long, env = "SUMATRA_DEMO")]
    pub demo: bool,
    /// Threads that run request handlers.
    #[arg(long, default_value_t = 16, value_name = "N", env = "SUMATRA_WORKERS")]
    pub workers: usize,
    /// Most connections open at once; more wait to be accepted.
    #[arg(
        long,
        default_value_t = 1024,
        value_name = "N",
        env = "SUMATRA_MAX_CONNECTIONS"
    )]
    pub max_connections: usize,
    /// Durability of writes: full (every acknowledged write is on disk) or
    /// normal (faster; a power cut may lose the last writes).
    #[arg(long, value_enum, default_value_t = SyncArg::Full, env = "SUMATRA_SYNC")]
    pub sync: SyncArg,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key), so that
    /// passwords never cross the network in clear.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        env = "SUMATRA_TLS_CERT"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        env = "SUMATRA_TLS_KEY"
    )]
    pub tls_key: Option<PathBuf>,
    /// Seconds a client has to send a request's headers (and to finish a TLS
    /// handshake); idle keep-alive connections close after as long.
    #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..), env = "SUMATRA_HEADER_TIMEOUT")]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's body (then 408), and to
    /// start taking an answer it has stopped reading (then the connection closes).
    #[arg(long, default_value_t = 60, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..), env = "SUMATRA_BODY_TIMEOUT")]
    pub body_timeout: u64,
    /// Failed logins allowed per user name at one client address, and per
    /// client address, within a window of seconds; more get 429 with
    /// Retry-After until the window ends.
    #[arg(
        long,
        default_value = "10,50,300",
        value_name = "USER,ADDRESS,SECS",
        env = "SUMATRA_LOGIN_THROTTLE"
    )]
    pub login_throttle: String,
    /// Seconds any one question (a search, a sort, a download, a page) may
    /// take its statements (fractions allowed); past it the answer is 503
    /// with a sentence, and a reader that stops reading a download is
    /// dropped.
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = seconds, env = "SUMATRA_QUERY_TIMEOUT")]
    pub query_timeout: std::time::Duration,
    /// Seconds that SIGTERM or SIGINT waits for requests in flight before
    /// the work still running is stopped and the process exits.
    #[arg(long, default_value = "30", value_name = "SECS", value_parser = seconds, env = "SUMATRA_SHUTDOWN_GRACE")]
    pub shutdown_grace: std::time::Duration,
    /// Addresses of reverse proxies (nginx) whose X-Forwarded-For header
    /// names the client: the last address in it that is not one of these
    /// is the client's, for login throttling and logs. Without this option
    /// the header is ignored.
    #[arg(long, value_name = "ADDR", num_args = 1.., value_delimiter = ',', env = "SUMATRA_TRUST_PROXY")]
    pub trust_proxy: Vec<std::net::IpAddr>,
    /// Days deleted records stay in the trash before they are purged (at
    /// start, then every hour); 0 keeps them until `trash --purge`.
    #[arg(
        long,
        default_value_t = 30,
        value_name = "DAYS",
        env = "SUMATRA_TRASH_DAYS",
        value_parser = clap::value_parser!(u32).range(0..=36500)
    )]
    pub trash_days: u32,
    /// Serve Prometheus metrics at http://ADDR/metrics, on a listener of their
    /// own (off by default): 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR", value_parser = bind_address, env = "SUMATRA_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
    /// How requests are logged on standard error: text (one line each) or json
    /// (one object each: time, address, method, route, status, duration, user,
    /// request id).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "SUMATRA_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// `HOST:PORT`: an address, or a host name resolved to its first address.
fn bind_address(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    use std::net::ToSocketAddrs;
    match s.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{s:?} names no address")),
        Err(e) => Err(format!(
            "expected HOST:PORT like 127.0.0.1:8000 or localhost:8000, not {s:?} ({e})"
        )),
    }
}

/// A positive number of seconds, fractions allowed, at most an hour.
fn seconds(s: &str) -> Result<std::time::Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(n) if n > 0.0 && n <= 3600.0 => Ok(std::time::Duration::from_secs_f64(n)),
        _ => Err(format!(
            "{s:?}: expected a number of seconds above 0 and at most 3600"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Man pages, generated from the definitions above: `sumatra-server.1` and
    /// one `sumatra-server-COMMAND.1` per subcommand.
    fn man_pages() -> Vec<(String, Vec<u8>)> {
        use clap::CommandFactory;
        let cmd = Cli::command();
        let mut pages = Vec::new();
        let mut render = |name: String, c: clap::Command| {
            let mut buf = Vec::new();
            clap_mangen::Man::new(c)
                .title(name.to_uppercase())
                .render(&mut buf)
                .expect("rendering to memory cannot fail");
            pages.push((format!("{name}.1"), buf));
        };
        render("sumatra-server".into(), cmd.clone());
        for sub in cmd.get_subcommands() {
            let name = format!("sumatra-server-{}", sub.get_name());
            render(name, sub.clone());
        }
        pages
    }

    /// The committed man pages match `--help`. Regenerate with
    /// `UPDATE_MAN=1 cargo test --bin sumatra-server man_pages`.
    #[test]
    fn man_pages_are_up_to_date() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
        let update = std::env::var_os("UPDATE_MAN").is_some();
        let mut stale = Vec::new();
        for (name, text) in man_pages() {
            let path = dir.join(&name);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read(&path).ok().as_deref() != Some(text.as_slice()) {
                stale.push(name);
            }
        }
        assert!(
            stale.is_empty(),
            "man pages out of date: {stale:?}; run UPDATE_MAN=1 cargo test --bin sumatra-server man_pages"
        );
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
