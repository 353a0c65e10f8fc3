//! One function per subcommand. Commands talk to the store and print text;
//! they never format HTTP.

mod data;
mod healthcheck;
mod init;
mod lineage;
mod projects;
mod records;
mod serve;
mod token;
mod trash;
mod users;
mod whence;

use crate::cli::{Cli, Command};
use crate::error::Result;
use crate::store::{OpenMode, Store};

pub fn run(cli: Cli) -> Result<()> {
    let db = match &cli.db_file {
        Some(file) => db_from_file(file)?,
        None => cli.db,
    };
    let open = || Store::open(&db, OpenMode::Existing);
    match cli.command {
        Command::Init { yes } => init::init(&db, yes),
        Command::Useradd(a) => users::useradd(&mut open()?, &a.user, a.password_stdin),
        Command::Passwd(a) => users::passwd(&mut open()?, &a.user, a.password_stdin),
        Command::Userdel { user } => users::userdel(&mut open()?, &user),
        Command::Users => users::list(&open()?),
        Command::Grant {
            user,
            project,
            level,
        } => projects::grant(&mut open()?, &user, &project, level),
        Command::Revoke { user, project } => projects::revoke(&mut open()?, &user, &project),
        Command::Projects => projects::list(&open()?),
        Command::Loaddata {
            sources,
            dry_run,
            ignore_unknown,
        } => data::loaddata(&mut open()?, &sources, dry_run, ignore_unknown),
        Command::Export {
            projects,
            output,
            with_users,
            with_trash,
            full,
            force,
        } => data::export(
            &mut open()?,
            &projects,
            output.as_deref(),
            with_users,
            with_trash,
            full,
            force,
        ),
        Command::Records {
            project,
            query,
            sort,
            columns,
            limit,
            format,
        } => records::records(
            &mut open()?,
            &project,
            records::Asked {
                query: query.as_deref(),
                sort: sort.as_deref(),
                columns: columns.as_deref(),
                limit,
            },
            format,
        ),
        Command::Lineage {
            project,
            label,
            direction,
            depth,
            format,
            url,
        } => lineage::lineage(
            open()?,
            &project,
            &label,
            direction,
            depth,
            format,
            url.as_deref(),
        ),
        Command::Project {
            project,
            name,
            description,
            delete,
        } => trash::project(
            &mut open()?,
            &project,
            name.as_deref(),
            description.as_deref(),
            delete,
        ),
        Command::Trash {
            project,
            purge,
            days,
            format,
        } => trash::trash(&mut open()?, project.as_deref(), purge, days, format),
        Command::Restore {
            project,
            labels,
            tag,
            since,
            as_label,
        } => trash::restore(
            &mut open()?,
            &project,
            &labels,
            tag.as_deref(),
            since.as_deref(),
            as_label.as_deref(),
        ),
        Command::History {
            project,
            since,
            limit,
            format,
        } => trash::history(
            &open()?,
            project.as_deref(),
            since.as_deref(),
            limit,
            format,
        ),
        Command::Whence {
            files,
            digest,
            format,
        } => whence::whence(&open()?, &files, &digest, format),
        Command::Healthcheck { url } => healthcheck::run(&db, url.as_deref()),
        Command::Token(t) => token::run(&mut open()?, t),
        Command::Backup { file } => {
            // An older schema too: the copy to keep before `init` migrates.
            Store::open(&db, OpenMode::AsIs)?.backup_to(&file)?;
            eprintln!("backed up {db} to {}", file.display());
            Ok(())
        }
        Command::Serve(args) => serve::serve(&db, args),
    }
}

/// `--db-file`: the database's path or URL, the file's first line (never
/// printed: it may hold a password).
fn db_from_file(file: &std::path::Path) -> Result<crate::store::Location> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        crate::error::Error::bad(format!("cannot read --db-file {}: {e}", file.display()))
    })?;
    // A byte-order mark (an editor's UTF-8 file) is no part of the URL.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| {
            crate::error::Error::bad(format!(
                "--db-file {} is empty: it should hold the database's path or URL",
                file.display()
            ))
        })?;
    Ok(line.parse().expect("parsing a location cannot fail"))
}

/// The shell may leave a project without an admin (the sysadmin decides,
/// SPEC 2.7), but says so, and how to mend it.
fn say_admin_less(projects: &[String]) {
    for p in projects {
        eprintln!(
            "warning: project {p} has no admin left; give it one with \
             `sumatra-server grant USER {p} --level admin`"
        );
    }
}
