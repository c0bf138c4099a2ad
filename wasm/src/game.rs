//! The real games in the browser: the ground truth the neural game is compared with, stepped
//! once per frame by the page with the action its keyboard maps to.

use gamegen_core::games::{self, Events, Game, GameKind, Keys, action_for_keys};
use wasm_bindgen::prelude::*;

use crate::js_err;

/// Parse a game name as the pages and the CLI spell it ("traveler", "pong", "pacman").
pub(crate) fn parse_kind(name: &str) -> Result<GameKind, JsValue> {
    name.parse::<GameKind>().map_err(js_err)
}

/// One of the three ground-truth games, reset with a seed.
#[wasm_bindgen]
pub struct RealGame {
    kind: GameKind,
    pub(crate) game: Box<dyn Game>,
    events: u8,
}

#[wasm_bindgen]
impl RealGame {
    /// A new episode of `game` ("traveler", "pong" or "pacman") with `seed`.
    #[wasm_bindgen(constructor)]
    pub fn new(game: &str, seed: u32) -> Result<RealGame, JsValue> {
        let kind = parse_kind(game)?;
        let mut g = games::new_game(kind, None).map_err(js_err)?;
        g.reset(seed as u64);
        Ok(RealGame {
            kind,
            game: g,
            events: 0,
        })
    }

    /// A new episode of `game` on a designer's map: the text of a `gamegen-map` file
    /// (docs/maps.md). A map that does not parse, or is for another game, raises an exception
    /// naming the line.
    #[wasm_bindgen(js_name = withMap)]
    pub fn with_map(game: &str, seed: u32, map_text: &str) -> Result<RealGame, JsValue> {
        let kind = parse_kind(game)?;
        let preset = games::maps::parse_map(map_text).map_err(js_err)?;
        let mut g = games::new_game(kind, Some(&preset)).map_err(js_err)?;
        g.reset(seed as u64);
        Ok(RealGame {
            kind,
            game: g,
            events: 0,
        })
    }

    /// Advance one frame with action id `action` (an out-of-range id is applied as "stay").
    /// Returns the event bits of the frame (see `eventNames`).
    pub fn step(&mut self, action: u8) -> u8 {
        self.events = self.game.step(action).events.0;
        self.events
    }

    /// The current frame as RGBA bytes (`width * height * 4`), for a canvas `ImageData`.
    #[wasm_bindgen(js_name = frameRgba)]
    pub fn frame_rgba(&self) -> Vec<u8> {
        self.game.frame_rgba()
    }

    /// The current frame as RGB bytes (`width * height * 3`), what `NeuralGame.reset` takes.
    #[wasm_bindgen(js_name = frameRgb)]
    pub fn frame_rgb(&self) -> Vec<u8> {
        self.game.frame().to_vec()
    }

    #[wasm_bindgen(getter)]
    pub fn game(&self) -> String {
        self.kind.name().to_string()
    }

    #[wasm_bindgen(getter)]
    pub fn width(&self) -> usize {
        self.kind.frame_size().0
    }

    #[wasm_bindgen(getter)]
    pub fn height(&self) -> usize {
        self.kind.frame_size().1
    }

    #[wasm_bindgen(getter)]
    pub fn score(&self) -> u32 {
        self.game.score()
    }

    /// Event bits of the last step.
    #[wasm_bindgen(getter)]
    pub fn events(&self) -> u8 {
        self.events
    }

    /// Set once the episode's end event has fired (Pong: a point lost; Pac-Man: caught).
    #[wasm_bindgen(getter)]
    pub fn done(&self) -> bool {
        self.game.done()
    }

    /// The player's world position (Traveler's x grows without bound).
    #[wasm_bindgen(getter, js_name = playerX)]
    pub fn player_x(&self) -> i32 {
        self.game.player().x
    }

    #[wasm_bindgen(getter, js_name = playerY)]
    pub fn player_y(&self) -> i32 {
        self.game.player().y
    }

    /// The action id for the keys held (see `actionForKeys`).
    #[wasm_bindgen(js_name = actionForKeys)]
    pub fn action_for_keys(
        &self,
        up: bool,
        down: bool,
        left: bool,
        right: bool,
        w: bool,
        s: bool,
    ) -> u8 {
        let keys = Keys {
            up,
            down,
            left,
            right,
            w,
            s,
        };
        action_for_keys(self.kind, keys)
    }

    /// Short names of the action ids, index = id.
    #[wasm_bindgen(js_name = actionNames)]
    pub fn action_names(&self) -> Vec<String> {
        names(self.kind)
    }
}

pub(crate) fn names(kind: GameKind) -> Vec<String> {
    kind.action_names().iter().map(|s| s.to_string()).collect()
}

/// The action id of `game` for the keys held: Traveler uses left/right, Pac-Man the arrows,
/// Pong W/S for the left paddle and up/down for the right one. Opposite keys cancel out.
#[wasm_bindgen(js_name = actionForKeys)]
#[allow(clippy::too_many_arguments)]
pub fn action_for_keys_js(
    game: &str,
    up: bool,
    down: bool,
    left: bool,
    right: bool,
    w: bool,
    s: bool,
) -> Result<u8, JsValue> {
    let keys = Keys {
        up,
        down,
        left,
        right,
        w,
        s,
    };
    Ok(action_for_keys(parse_kind(game)?, keys))
}

/// The example designer strip shipped with the Traveler game (`gamegen-map` text), a
/// starting point for the play page's map editor.
#[wasm_bindgen(js_name = travelerExampleMap)]
pub fn traveler_example_map() -> String {
    games::traveler::EXAMPLE_STRIP.to_string()
}

/// The built-in Traveler buildings a map editor offers: one `"K RRGGBB H"` line each (strip
/// key, colour, height in pixels); upper case keys are tall, lower case short.
#[wasm_bindgen(js_name = travelerPalette)]
pub fn traveler_palette() -> Vec<String> {
    games::maps::builtin_palette()
        .into_iter()
        .map(|(k, b)| {
            let [r, g, bl] = b.color;
            format!("{k} {r:02x}{g:02x}{bl:02x} {}", b.height)
        })
        .collect()
}

/// Names of the event bits set in `bits` ("built", "paddle_hit", ...).
#[wasm_bindgen(js_name = eventNames)]
pub fn event_names(bits: u8) -> Vec<String> {
    Events(bits).names().iter().map(|s| s.to_string()).collect()
}

/// Expand an action script (`R*30,L*10,S*5`, as `gamegen play --actions` takes it) into one
/// action id per frame; a bad script raises an exception naming the bad item.
#[wasm_bindgen(js_name = parseActions)]
pub fn parse_actions_js(game: &str, script: &str) -> Result<Vec<u8>, JsValue> {
    games::actions::parse_actions(parse_kind(game)?, script).map_err(js_err)
}
