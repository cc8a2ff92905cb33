//! Tier 1: the library called in the test process, and the `chestnode`
//! binary run on its own; nothing outside the repository is needed.

mod default_model;
mod densenet_parity;
mod imaging;
