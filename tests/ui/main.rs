//! The pages in a real browser (headless chromium through chromedriver, see
//! `browser`): a person's journeys, each page checked for console errors,
//! foreign requests and accessibility, with screenshots at two widths.
//! One PostgreSQL cluster for the binary, as the other test binaries.

#[path = "../common/mod.rs"]
mod common;

mod browser;
mod journeys;
