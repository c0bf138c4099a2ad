//! The playability evaluation: the Valid Action Model, valid numerical model and feature
//! network in one CNN ([`evalnet`]), the Fréchet distance ([`frechet`]), SpaCon
//! ([`spacon`]), and exact detectors of the games' objects ([`detect`], the score reader
//! [`ocr`]) with their verdicts against the recorded truth ([`objects`]).

pub mod detect;
pub mod evalnet;
pub mod frechet;
pub mod objects;
pub mod ocr;
pub mod spacon;
