//! kong.yml as written: a spanned model (to be written).
