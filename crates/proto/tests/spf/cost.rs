//! Evaluation cost and hostile records.
