//! The playability evaluation: the Valid Action Model, valid numerical model and feature
//! network in one CNN ([`evalnet`]), the Fréchet distance ([`frechet`]) and SpaCon
//! ([`spacon`]).

pub mod evalnet;
pub mod frechet;
pub mod spacon;
