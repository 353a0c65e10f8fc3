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
        in one SQLite file, and serves them as JSON to the client and as HTML to people.",
    after_help = "Quick start:\n  sumatra-server serve --demo          # a throw-away server with example data\n  \
        sumatra-server --db records.db init\n  \
        sumatra-server --db records.db useradd alice\n  \
        sumatra-server --db records.db grant alice MyProject --level admin\n  \
        sumatra-server --db records.db serve --bind 127.0.0.1:8000"
)]
pub struct Cli {
    /// The SQLite database file.
    #[arg(long, global = true, env = "SUMATRA_DB", default_value = "sumatra.db", value_name = "PATH")]
    pub db: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database, or bring an older one up to date (safe to repeat).
    #[command(after_help = "Example:\n  sumatra-server --db records.db init")]
    Init,

    /// Add a user; the password is asked twice, or read from standard input.
    #[command(after_help = "Examples:\n  sumatra-server useradd alice\n  printf '%s\\n' \"$PW\" | sumatra-server useradd alice --password-stdin")]
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
    #[command(after_help = "Examples:\n  sumatra-server grant alice MyProject --level admin\n  sumatra-server grant anonymous MyProject")]
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
    #[command(after_help = "Examples:\n  sumatra-server loaddata haggling permissions\n  python manage.py dumpdata > dump.json && sumatra-server loaddata dump.json")]
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

    /// Write records as JSON (all projects, or those named).
    #[command(after_help = "Examples:\n  sumatra-server export MyProject -o myproject.json\n  sumatra-server export --with-users -o backup.json")]
    Export {
        /// Projects to export (default: all).
        projects: Vec<String>,
        /// Write to this file instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Include users (with password hashes) and permissions.
        #[arg(long)]
        with_users: bool,
    },

    /// Write a consistent copy of the database, even while the server runs.
    #[command(after_help = "Example:\n  sumatra-server backup /backups/sumatra-$(date +%F).db")]
    Backup {
        /// The new file to write.
        file: PathBuf,
    },

    /// Run the HTTP server (REST API for the Sumatra client, HTML for people).
    #[command(after_help = "Examples:\n  sumatra-server serve --demo\n  sumatra-server --db records.db serve --bind 127.0.0.1:8000 --prefix /records/")]
    Serve(ServeArgs),
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

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8000", value_name = "ADDR")]
    pub bind: SocketAddr,
    /// URL path under which the API and pages live.
    #[arg(long, default_value = "/records/", value_name = "PATH")]
    pub prefix: String,
    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, default_value_t = 16 * 1024 * 1024, value_name = "BYTES")]
    pub max_body: usize,
    /// Serve a throw-away database loaded with the example fixtures
    /// (user testuser, password abc123); --db is ignored.
    #[arg(long)]
    pub demo: bool,
    /// Threads that run request handlers.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub workers: usize,
    /// Most connections open at once; more wait to be accepted.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,
    /// Durability of writes: full (every acknowledged write is on disk) or
    /// normal (faster; a power cut may lose the last writes).
    #[arg(long, value_enum, default_value_t = SyncArg::Full)]
    pub sync: SyncArg,
}
