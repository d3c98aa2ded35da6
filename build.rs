//! Rebuilds the crate when a migration changes: `sqlx::migrate!` embeds the files of
//! `migrations/` at compile time, and cargo does not track what a macro reads. The script
//! runs again only when something under `migrations/` changes.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
