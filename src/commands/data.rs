use crate::error::{Error, Result};
use crate::store::Store;
use std::path::Path;

pub fn loaddata(_store: &mut Store, _sources: &[String], _dry_run: bool, _ignore_unknown: bool) -> Result<()> {
    Err(Error::bad("loaddata is not built yet"))
}

pub fn export(_store: &Store, _projects: &[String], _output: Option<&Path>, _with_users: bool) -> Result<()> {
    Err(Error::bad("export is not built yet"))
}
