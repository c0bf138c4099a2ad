//! The three ground-truth games (Traveler, Pong, Pac-Man): deterministic, seedable engines.
