//! Keyboard to action ids, so every front end (the browser page, a native window) maps keys the
//! same way. With [`super::new_game`], [`super::Game::step`] and [`super::Game::frame_rgba`]
//! this is the whole API a browser needs to play the real games:
//!
//! ```text
//! let mut g = new_game(kind, preset)?;  g.reset(seed);
//! every 1/30 s:  g.step(action_for_keys(kind, keys));  draw g.frame_rgba() (W x H RGBA)
//! ```

use super::GameKind;

/// Keys held down this frame. Pong's left paddle uses W/S, the right paddle the arrow keys;
/// the other games use the arrows (or WASD, folded into the arrows by the caller if wanted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keys {
    pub up: bool,
    pub down: bool,
    pub left: bool,
    pub right: bool,
    pub w: bool,
    pub s: bool,
}

/// The action id for the keys held. Opposite keys together cancel out (stay).
pub fn action_for_keys(kind: GameKind, k: Keys) -> u8 {
    let vertical = |up: bool, down: bool| match (up, down) {
        (true, false) => 1,
        (false, true) => 2,
        _ => 0,
    };
    match kind {
        GameKind::Traveler => match (k.left, k.right) {
            (true, false) => 1,
            (false, true) => 2,
            _ => 0,
        },
        GameKind::Pong => vertical(k.w, k.s) * 3 + vertical(k.up, k.down),
        GameKind::Pacman => {
            // The most recent key is not known here; prefer vertical, as arcade sticks do.
            match (vertical(k.up, k.down), k.left, k.right) {
                (1, _, _) => 1,
                (2, _, _) => 2,
                (_, true, false) => 3,
                (_, false, true) => 4,
                _ => 0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_the_documented_ids() {
        let k = |f: fn(&mut Keys)| {
            let mut x = Keys::default();
            f(&mut x);
            x
        };
        assert_eq!(
            action_for_keys(GameKind::Traveler, k(|x| x.right = true)),
            2
        );
        assert_eq!(
            action_for_keys(
                GameKind::Traveler,
                k(|x| {
                    x.left = true;
                    x.right = true
                })
            ),
            0
        );
        assert_eq!(
            action_for_keys(
                GameKind::Pong,
                k(|x| {
                    x.w = true;
                    x.down = true
                })
            ),
            5
        ); // "UD"
        assert_eq!(GameKind::Pong.action_names()[5], "UD");
        assert_eq!(action_for_keys(GameKind::Pacman, k(|x| x.left = true)), 3);
        assert_eq!(action_for_keys(GameKind::Pacman, Keys::default()), 0);
    }
}
