//! Generation for dmad (work in progress).
#![warn(missing_docs)]
