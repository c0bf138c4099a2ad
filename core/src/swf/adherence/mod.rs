//! Prompt adherence: does a SWF show what its prompt asked for?
//!
//! [`extract`] reads checkable facts out of any file (stage size, frame rate, frame count,
//! background, the objects on the main timeline with their shapes, colours and motion, and
//! whether scripts read the keyboard or mouse); [`claims`] reads what a prompt states, from a
//! synthetic file's attribute record (exact) or from the prompt's words; [`score`] compares the
//! two claim by claim. The measure is recall over the prompt's claims: a file may show more
//! than was asked, and that is reported (`unclaimed_objects`) but not penalised.

pub mod claims;
pub mod extract;
pub mod score;

#[cfg(test)]
mod tests;

pub use claims::Claims;
pub use extract::{ExtractError, Facts, extract};
pub use score::{Adherence, score};

/// Extract the facts of `bytes` and score them against `claims`.
pub fn check(bytes: &[u8], claims: &Claims) -> Result<(Facts, Adherence), ExtractError> {
    let facts = extract(bytes)?;
    let adherence = score(&facts, claims);
    Ok((facts, adherence))
}
