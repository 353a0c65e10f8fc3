//! Data in and out (SPEC 5): the formats (`django` dumps, our `dump`
//! format) and the load engine. Formats know no database; the engine
//! applies what they read through the store.

pub mod django;
pub mod dump;
mod load;
pub mod prov;
pub mod rocrate;

pub use load::load;
