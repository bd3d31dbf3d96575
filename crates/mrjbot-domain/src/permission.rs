//! Permissions and the built-in roles. Custom roles are sets of these permissions kept
//! in the database; the built-in ones are defined here so every replica agrees on them.
//!
//! Reading one's own profile and subscriptions, and the catalogue of active plans, needs
//! no permission: every signed-in user may do that, and only that, for themselves.

use serde::{Deserialize, Serialize};

macro_rules! permissions {
    ($($variant:ident => $name:tt, $doc:literal;)*) => {
        /// One thing a role may do.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum Permission {
            $(#[doc = $doc] #[serde(rename = $name)] $variant,)*
        }

        impl Permission {
            /// Every permission.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            /// Wire name (`users.read`).
            pub fn as_str(self) -> &'static str {
                match self { $(Permission::$variant => $name,)* }
            }

            /// What it allows, in English.
            pub fn describe(self) -> &'static str {
                match self { $(Permission::$variant => $doc,)* }
            }

            /// Parses a wire name.
            pub fn parse(s: &str) -> Option<Permission> {
                match s { $($name => Some(Permission::$variant),)* _ => None }
            }
        }
    };
}

permissions! {
    UsersRead => "users.read", "List and view every user.";
    UsersWrite => "users.write", "Create, edit, disable and delete users; reset their passwords.";
    RolesRead => "roles.read", "View roles and their permissions.";
    RolesWrite => "roles.write", "Create, edit and delete custom roles; assign roles to users.";
    PlansRead => "plans.read", "View every plan, including inactive ones.";
    PlansWrite => "plans.write", "Create, edit and delete plans and their prices.";
    NodesRead => "nodes.read", "View nodes, inbounds and their health.";
    NodesWrite => "nodes.write", "Create, edit and delete nodes and inbounds.";
    SubscriptionsRead => "subscriptions.read", "View every subscription.";
    SubscriptionsWrite => "subscriptions.write", "Create, renew, extend, suspend and otherwise change any subscription.";
    PaymentsRead => "payments.read", "View orders and payments.";
    PaymentsApprove => "payments.approve", "Approve, reject and refund payments.";
    TicketsRead => "tickets.read", "Read every support ticket.";
    TicketsWrite => "tickets.write", "Answer and close support tickets.";
    BroadcastsWrite => "broadcasts.write", "Send broadcasts to customers.";
    ReportsRead => "reports.read", "View financial reports.";
    AuditRead => "audit.read", "Read the audit log.";
    SettingsRead => "settings.read", "View shop settings.";
    SettingsWrite => "settings.write", "Change shop settings.";
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The roles every installation has. Their permission sets are fixed in code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinRole {
    /// The shop owner: everything.
    Admin,
    /// Sales staff: customers, subscriptions and payments; no nodes, roles or settings.
    Seller,
    /// Support agent: reads customers and subscriptions, answers tickets.
    Support,
    /// A customer with perks (discounts and priority come with later features); own data only.
    Vip,
    /// A customer: own data only.
    User,
}

impl BuiltinRole {
    /// All built-in roles.
    pub const ALL: [BuiltinRole; 5] = [
        BuiltinRole::Admin,
        BuiltinRole::Seller,
        BuiltinRole::Support,
        BuiltinRole::Vip,
        BuiltinRole::User,
    ];

    /// The role's name in the database and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            BuiltinRole::Admin => "admin",
            BuiltinRole::Seller => "seller",
            BuiltinRole::Support => "support",
            BuiltinRole::Vip => "vip",
            BuiltinRole::User => "user",
        }
    }

    /// Parses a built-in role name.
    pub fn parse(s: &str) -> Option<BuiltinRole> {
        BuiltinRole::ALL.into_iter().find(|r| r.name() == s)
    }

    /// What the role may do.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            BuiltinRole::Admin => Permission::ALL,
            BuiltinRole::Seller => &[
                UsersRead,
                UsersWrite,
                PlansRead,
                NodesRead,
                SubscriptionsRead,
                SubscriptionsWrite,
                PaymentsRead,
                PaymentsApprove,
                TicketsRead,
                TicketsWrite,
                ReportsRead,
            ],
            BuiltinRole::Support => &[
                UsersRead,
                PlansRead,
                SubscriptionsRead,
                PaymentsRead,
                TicketsRead,
                TicketsWrite,
            ],
            BuiltinRole::Vip | BuiltinRole::User => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(*p));
            assert_eq!(
                serde_json::to_value(p).ok(),
                Some(serde_json::json!(p.as_str()))
            );
        }
        for r in BuiltinRole::ALL {
            assert_eq!(BuiltinRole::parse(r.name()), Some(r));
        }
    }

    #[test]
    fn admin_has_everything_customers_nothing() {
        assert_eq!(
            BuiltinRole::Admin.permissions().len(),
            Permission::ALL.len()
        );
        assert!(BuiltinRole::User.permissions().is_empty());
        assert!(
            !BuiltinRole::Seller
                .permissions()
                .contains(&Permission::NodesWrite)
        );
    }
}
