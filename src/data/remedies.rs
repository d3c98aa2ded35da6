//! What to tell a user who has no data set: every way to get one. Shared by the search
//! (nothing found) and the download (it failed), which is why it lives on its own.

use super::files::{ALL_FILES, ENV_VAR, LOCAL_DIR, MIRRORS, SYSTEM_DIR};

/// The ways to make the data available, as shown to users. `download_tried` drops
/// the "allow the download" advice when that is what just failed.
pub fn remedies(download_tried: bool) -> String {
    let names: Vec<&str> = ALL_FILES.iter().map(|f| f.name).collect();
    let mut text = format!(
        "To fix this, do one of:\n\
         \x20 1. pass --data-dir DIR or set {ENV_VAR}=DIR, where DIR holds the four files {} (each plain or .gz);\n\
         \x20 2. put those files in ./{LOCAL_DIR} (relative to the working directory);\n\
         \x20 3. install Debian's package: apt-get install dataset-fashion-mnist (it puts them in {SYSTEM_DIR});",
        names.join(", ")
    );
    if download_tried {
        text.push_str(&format!(
            "\n\x20 4. download the four .gz files by hand from {} into one of those directories.",
            MIRRORS[0]
        ));
    } else {
        text.push_str(&format!(
            "\n\x20 4. let lrlab download them: drop --no-download / LRLAB_NO_DOWNLOAD (needs network access to {}).",
            MIRRORS[0]
        ));
    }
    text
}
