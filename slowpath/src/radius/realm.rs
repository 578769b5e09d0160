//! Realms in User-Name: `user@realm` (RFC 7542 NAI) and the older `realm/user` prefix form.

/// A User-Name split into user and realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nai<'a> {
    pub user: &'a str,
    pub realm: Option<&'a str>,
}

/// Splits a User-Name; the NAI suffix form wins when both separators appear, as a realm
/// cannot contain `@`.
pub fn split(name: &str) -> Nai<'_> {
    if let Some((user, realm)) = name.rsplit_once('@') {
        if !realm.is_empty() {
            return Nai {
                user,
                realm: Some(realm),
            };
        }
    }
    if let Some((realm, user)) = name.split_once('/') {
        if !realm.is_empty() {
            return Nai {
                user,
                realm: Some(realm),
            };
        }
    }
    Nai {
        user: name,
        realm: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_syntaxes() {
        assert_eq!(
            split("alice@csp1.example"),
            Nai {
                user: "alice",
                realm: Some("csp1.example")
            }
        );
        assert_eq!(
            split("csp1.example/alice"),
            Nai {
                user: "alice",
                realm: Some("csp1.example")
            }
        );
        assert_eq!(
            split("a@b@c"),
            Nai {
                user: "a@b",
                realm: Some("c")
            }
        );
        assert_eq!(split("bob").realm, None);
        assert_eq!(split("bob@").realm, None);
        assert_eq!(split("/bob").realm, None);
    }
}
