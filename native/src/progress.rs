//! Progress bars on stderr for long jobs (hidden when stderr is not a terminal, so logs and
//! tests stay clean).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `total` steps with a message slot (e.g. the current loss).
pub fn bar(total: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{what} [{{elapsed_precise}}] {{bar:40}} {{pos}}/{{len}} ({{per_sec}}, eta {{eta}}) {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}
