//! SWF validation (Ruffle's `swf` crate), synthesis, repair and facts.
