//! The user aggregate: who may log in, with which password, holding which roles in which
//! companies. Pure: password hashes arrive hashed, times as data.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use tributary_kernel::auth::{ANY_COMPANY, Catalog};

pub const USERNAME_LENGTH_MAX: usize = 64;
pub const NAME_LENGTH_MAX: usize = 200;
pub const EMAIL_LENGTH_MAX: usize = 254;
/// The shortest password accepted.
pub const PASSWORD_LENGTH_MIN: usize = 10;
/// The longest password accepted (hashing cost grows with it).
pub const PASSWORD_LENGTH_MAX: usize = 256;

/// A login name: 1 to 64 of `a-z 0-9 . _ -` and `@`, starting with a letter or digit;
/// stored lower case, so `Alice` and `alice` are one user.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn parse(text: &str) -> Result<Username, String> {
        let lower = text.trim().to_lowercase();
        if lower.is_empty() || lower.chars().count() > USERNAME_LENGTH_MAX {
            return Err(format!("must be 1 to {USERNAME_LENGTH_MAX} characters"));
        }
        if !lower.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err("must start with a letter or a digit".into());
        }
        if !lower
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
        {
            return Err("may contain only letters, digits, '.', '_', '-' and '@'".into());
        }
        Ok(Username(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One role held in one company (`*`: every company).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RoleAssignment {
    pub company: String,
    pub role: String,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    #[default]
    Active,
    Locked,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Locked => "locked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserEvent {
    UserCreated {
        username: Username,
        name: String,
        email: Option<String>,
        /// Argon2id in the PHC string format; `None`: the user logs in through the external
        /// identity provider only, until a password is set.
        password_hash: Option<String>,
    },
    UserChanged {
        name: String,
        email: Option<String>,
    },
    UserLocked {},
    UserUnlocked {},
    PasswordChanged {
        password_hash: String,
    },
    RoleGranted {
        company: String,
        role: String,
    },
    RoleRevoked {
        company: String,
        role: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub username: Option<Username>,
    pub name: String,
    pub email: Option<String>,
    pub status: UserStatus,
    pub password_hash: Option<String>,
    pub roles: BTreeSet<RoleAssignment>,
}

#[derive(Debug)]
pub enum UserCommand {
    Create {
        username: Username,
        name: String,
        email: Option<String>,
        password_hash: Option<String>,
        roles: Vec<RoleAssignment>,
    },
    Change {
        name: Option<String>,
        email: Option<Option<String>>,
        status: Option<UserStatus>,
    },
    SetPassword {
        password_hash: String,
    },
    Grant(RoleAssignment),
    Revoke(RoleAssignment),
}

/// A broken rule of a user command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserRejection {
    #[error("user {0} exists already")]
    Exists(Username),
    #[error("user does not exist")]
    Missing,
    #[error("{role:?} is not a role; roles are {}", tributary_kernel::auth::role::BUILT_IN.join(", "))]
    UnknownRole { role: String },
    #[error("the user does not hold role {role} in company {company}")]
    NotHeld { company: String, role: String },
}

impl UserRejection {
    pub fn field(&self) -> &'static str {
        match self {
            UserRejection::Exists(_) => "username",
            UserRejection::Missing => "username",
            UserRejection::UnknownRole { .. } | UserRejection::NotHeld { .. } => "role",
        }
    }

    pub fn rule(&self) -> &'static str {
        match self {
            UserRejection::Exists(_) => "user_exists",
            UserRejection::Missing => "user_not_found",
            UserRejection::UnknownRole { .. } => "role_unknown",
            UserRejection::NotHeld { .. } => "role_not_held",
        }
    }
}

impl User {
    pub fn exists(&self) -> bool {
        self.username.is_some()
    }

    pub fn is_active(&self) -> bool {
        self.exists() && self.status == UserStatus::Active
    }

    /// The (company, role) pairs it holds.
    pub fn assignments(&self) -> impl Iterator<Item = (&str, &str)> {
        self.roles
            .iter()
            .map(|r| (r.company.as_str(), r.role.as_str()))
    }

    /// Whether it holds `role` in every company.
    pub fn holds_everywhere(&self, role: &str) -> bool {
        self.roles
            .iter()
            .any(|r| r.company == ANY_COMPANY && r.role == role)
    }

    pub fn decide(&self, command: UserCommand) -> Result<Vec<UserEvent>, UserRejection> {
        match command {
            UserCommand::Create {
                username,
                name,
                email,
                password_hash,
                roles,
            } => {
                if self.exists() {
                    return Err(UserRejection::Exists(username));
                }
                let mut events = vec![UserEvent::UserCreated {
                    username,
                    name,
                    email,
                    password_hash,
                }];
                for assignment in roles {
                    known_role(&assignment.role)?;
                    events.push(UserEvent::RoleGranted {
                        company: assignment.company,
                        role: assignment.role,
                    });
                }
                Ok(events)
            }
            _ if !self.exists() => Err(UserRejection::Missing),
            UserCommand::Change {
                name,
                email,
                status,
            } => {
                let mut events = Vec::new();
                let name = name.unwrap_or_else(|| self.name.clone());
                let email = email.unwrap_or_else(|| self.email.clone());
                if name != self.name || email != self.email {
                    events.push(UserEvent::UserChanged { name, email });
                }
                match status {
                    Some(UserStatus::Locked) if self.status == UserStatus::Active => {
                        events.push(UserEvent::UserLocked {});
                    }
                    Some(UserStatus::Active) if self.status == UserStatus::Locked => {
                        events.push(UserEvent::UserUnlocked {});
                    }
                    _ => {}
                }
                Ok(events)
            }
            UserCommand::SetPassword { password_hash } => {
                Ok(vec![UserEvent::PasswordChanged { password_hash }])
            }
            UserCommand::Grant(assignment) => {
                known_role(&assignment.role)?;
                if self.roles.contains(&assignment) {
                    return Ok(Vec::new());
                }
                Ok(vec![UserEvent::RoleGranted {
                    company: assignment.company,
                    role: assignment.role,
                }])
            }
            UserCommand::Revoke(assignment) => {
                if !self.roles.contains(&assignment) {
                    return Err(UserRejection::NotHeld {
                        company: assignment.company,
                        role: assignment.role,
                    });
                }
                Ok(vec![UserEvent::RoleRevoked {
                    company: assignment.company,
                    role: assignment.role,
                }])
            }
        }
    }

    pub fn apply(&mut self, event: &UserEvent) {
        match event {
            UserEvent::UserCreated {
                username,
                name,
                email,
                password_hash,
            } => {
                self.username = Some(username.clone());
                self.name = name.clone();
                self.email = email.clone();
                self.password_hash = password_hash.clone();
            }
            UserEvent::UserChanged { name, email } => {
                self.name = name.clone();
                self.email = email.clone();
            }
            UserEvent::UserLocked {} => self.status = UserStatus::Locked,
            UserEvent::UserUnlocked {} => self.status = UserStatus::Active,
            UserEvent::PasswordChanged { password_hash } => {
                self.password_hash = Some(password_hash.clone());
            }
            UserEvent::RoleGranted { company, role } => {
                self.roles.insert(RoleAssignment {
                    company: company.clone(),
                    role: role.clone(),
                });
            }
            UserEvent::RoleRevoked { company, role } => {
                self.roles.remove(&RoleAssignment {
                    company: company.clone(),
                    role: role.clone(),
                });
            }
        }
    }
}

fn known_role(role: &str) -> Result<(), UserRejection> {
    if Catalog::is_role(role) {
        Ok(())
    } else {
        Err(UserRejection::UnknownRole {
            role: role.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(events: &[UserEvent]) -> User {
        let mut user = User::default();
        for event in events {
            user.apply(event);
        }
        user
    }

    fn created() -> UserEvent {
        UserEvent::UserCreated {
            username: Username::parse("Alice").unwrap(),
            name: "Alice".into(),
            email: None,
            password_hash: Some("$argon2id$x".into()),
        }
    }

    fn assignment(company: &str, role: &str) -> RoleAssignment {
        RoleAssignment {
            company: company.into(),
            role: role.into(),
        }
    }

    #[test]
    fn usernames_are_lower_case_and_plain() {
        assert_eq!(Username::parse(" Alice.B ").unwrap().as_str(), "alice.b");
        assert!(Username::parse("").is_err());
        assert!(Username::parse("-x").is_err());
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn a_user_is_created_once_with_known_roles_only() {
        let user = given(&[created()]);
        let again = user.decide(UserCommand::Create {
            username: Username::parse("alice").unwrap(),
            name: "A".into(),
            email: None,
            password_hash: None,
            roles: vec![],
        });
        assert!(matches!(again, Err(UserRejection::Exists(_))));
        let unknown = User::default().decide(UserCommand::Create {
            username: Username::parse("bob").unwrap(),
            name: "B".into(),
            email: None,
            password_hash: None,
            roles: vec![assignment("MAIN", "superuser")],
        });
        assert_eq!(unknown.unwrap_err().rule(), "role_unknown");
    }

    #[test]
    fn grants_are_idempotent_and_revoking_what_is_not_held_is_refused() {
        let user = given(&[
            created(),
            UserEvent::RoleGranted {
                company: "A".into(),
                role: "accountant".into(),
            },
        ]);
        assert_eq!(
            user.decide(UserCommand::Grant(assignment("A", "accountant")))
                .unwrap(),
            vec![]
        );
        assert_eq!(
            user.decide(UserCommand::Revoke(assignment("B", "accountant")))
                .unwrap_err()
                .rule(),
            "role_not_held"
        );
        let revoked = user
            .decide(UserCommand::Revoke(assignment("A", "accountant")))
            .unwrap();
        let mut after = user.clone();
        after.apply(&revoked[0]);
        assert!(after.roles.is_empty());
    }

    #[test]
    fn locking_and_unlocking_change_the_status_once() {
        let user = given(&[created()]);
        let lock = UserCommand::Change {
            name: None,
            email: None,
            status: Some(UserStatus::Locked),
        };
        assert_eq!(user.decide(lock).unwrap(), vec![UserEvent::UserLocked {}]);
        let locked = given(&[created(), UserEvent::UserLocked {}]);
        assert!(!locked.is_active());
        let again = locked.decide(UserCommand::Change {
            name: None,
            email: None,
            status: Some(UserStatus::Locked),
        });
        assert_eq!(again.unwrap(), vec![]);
    }
}
