//! `basic-auth` config (kong-compat.md §4.3): Kong's fields and defaults.

use super::auth::{anonymous, realm};
use crate::{
    diag::Diagnostics,
    ir::*,
    syntax::{record::Record, Node},
};

pub(crate) fn lower(node: &Node, d: &mut Diagnostics) -> Option<PluginConfig> {
    let mut r = Record::new(node, "basic-auth config", d)?;
    let anonymous = anonymous(&mut r, d);
    let hide_credentials = r.bool("hide_credentials", d).is_some_and(|b| b.value);
    let realm = realm(&mut r, d);
    r.finish(d);
    Some(PluginConfig::BasicAuth(BasicAuth {
        anonymous,
        hide_credentials,
        realm: realm.map_or_else(|| "service".to_owned(), |r| r.value),
    }))
}
