//! syntax -> ir (to be written).
