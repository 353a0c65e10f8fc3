use crate::cli::ServeArgs;
use crate::error::{Error, Result};
use std::path::Path;

pub fn serve(_db: &Path, _args: ServeArgs) -> Result<()> {
    Err(Error::bad("serve is not built yet"))
}
