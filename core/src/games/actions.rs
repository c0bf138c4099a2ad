//! Scripted action strings, for `gamegen play` and tests: `R*30,L*10,S*5`.
//!
//! Items are separated by commas (or spaces); each is an action name, optionally followed by
//! `*N` to repeat it N times. Names are case-insensitive:
//! - Traveler: `S`/`stay`, `L`/`left`, `R`/`right`
//! - Pac-Man: `S`/`stay`, `U`/`up`, `D`/`down`, `L`/`left`, `R`/`right`
//! - Pong: two letters, left paddle then right paddle, each `S`, `U` or `D` (`UD` = left up,
//!   right down)
//! - any game: the numeric action id (`2*5`)

use super::{GameError, GameKind};

/// Largest number of actions a script may expand to (keeps a typo like `R*99999999999` from
/// allocating gigabytes).
pub const MAX_SCRIPT_LEN: usize = 1_000_000;

/// An expanded script: one action id per frame.
pub type ActionScript = Vec<u8>;

/// Action id of one name for `kind`.
pub fn parse_action(kind: GameKind, name: &str) -> Result<u8, GameError> {
    let bad = |why: String| GameError::BadAction {
        game: kind.name(),
        token: name.to_string(),
        why,
    };
    if let Ok(id) = name.parse::<u8>() {
        if (id as usize) < kind.num_actions() {
            return Ok(id);
        }
        return Err(bad(format!(
            "action ids go from 0 to {}",
            kind.num_actions() - 1
        )));
    }
    let n = name.to_ascii_lowercase();
    let found = match kind {
        GameKind::Traveler => match n.as_str() {
            "s" | "stay" => Some(0),
            "l" | "left" => Some(1),
            "r" | "right" => Some(2),
            _ => None,
        },
        GameKind::Pacman => match n.as_str() {
            "s" | "stay" => Some(0),
            "u" | "up" => Some(1),
            "d" | "down" => Some(2),
            "l" | "left" => Some(3),
            "r" | "right" => Some(4),
            _ => None,
        },
        GameKind::Pong => {
            let m = |c: u8| match c {
                b's' => Some(0u8),
                b'u' => Some(1),
                b'd' => Some(2),
                _ => None,
            };
            match n.as_bytes() {
                [l, r] => m(*l).zip(m(*r)).map(|(l, r)| l * 3 + r),
                _ => None,
            }
        }
    };
    found.ok_or_else(|| {
        bad(match kind {
            GameKind::Traveler => "expected S, L or R (stay, left, right)".into(),
            GameKind::Pacman => "expected S, U, D, L or R (stay, up, down, left, right)".into(),
            GameKind::Pong => {
                "expected two letters of S/U/D, left paddle then right (e.g. UD)".into()
            }
        })
    })
}

/// Expand a script such as `R*30,L*10,S*5` into one action id per frame.
pub fn parse_actions(kind: GameKind, script: &str) -> Result<ActionScript, GameError> {
    let mut out = Vec::new();
    for item in script
        .split([',', ' ', '\n', '\t'])
        .filter(|s| !s.is_empty())
    {
        let (name, count) = match item.split_once('*') {
            Some((n, c)) => {
                let count: usize = c.trim().parse().map_err(|_| GameError::BadAction {
                    game: kind.name(),
                    token: item.to_string(),
                    why: "the repeat count after '*' must be a positive number".into(),
                })?;
                (n.trim(), count)
            }
            None => (item, 1),
        };
        let id = parse_action(kind, name)?;
        if count == 0 || out.len() + count > MAX_SCRIPT_LEN {
            return Err(GameError::BadAction {
                game: kind.name(),
                token: item.to_string(),
                why: format!("repeat counts must be 1.. and add up to at most {MAX_SCRIPT_LEN}"),
            });
        }
        out.extend(std::iter::repeat_n(id, count));
    }
    if out.is_empty() {
        return Err(GameError::BadAction {
            game: kind.name(),
            token: script.to_string(),
            why: "no actions given".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_repeats() {
        let a = parse_actions(GameKind::Traveler, "R*3,l, S*2").unwrap();
        assert_eq!(a, vec![2, 2, 2, 1, 0, 0]);
        assert_eq!(
            parse_actions(GameKind::Pacman, "up*2,Right").unwrap(),
            vec![1, 1, 4]
        );
        assert_eq!(
            parse_actions(GameKind::Pong, "UD,ss*2").unwrap(),
            vec![5, 0, 0]
        );
        assert_eq!(parse_actions(GameKind::Pong, "8").unwrap(), vec![8]);
    }

    #[test]
    fn bad_scripts_say_why() {
        for (kind, s, want) in [
            (GameKind::Traveler, "U", "expected S, L or R"),
            (GameKind::Traveler, "R*x", "repeat count"),
            (GameKind::Traveler, "R*0", "repeat counts"),
            (GameKind::Traveler, "R*99999999999", "at most"),
            (GameKind::Pong, "U", "two letters"),
            (GameKind::Pacman, "9", "from 0 to 4"),
            (GameKind::Pacman, " , ", "no actions"),
        ] {
            let e = parse_actions(kind, s).unwrap_err().to_string();
            assert!(e.contains(want), "{s}: '{e}' lacks '{want}'");
        }
    }
}
