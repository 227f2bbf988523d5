//! The three users of the conference tests (alice 1001, bob 1002, carol 1003) and how the
//! logs name them; each test gives them tones of its own.

use super::User;

/// One of the three parties, in the order the tests index them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// alice, 1001.
    Alice,
    /// bob, 1002.
    Bob,
    /// carol, 1003.
    Carol,
}

/// The three, in index order.
pub const PARTIES: [Party; 3] = [Party::Alice, Party::Bob, Party::Carol];

impl Party {
    /// Its user (provisioned by the test).
    pub fn user(self) -> User {
        match self {
            Party::Alice => User::alice(),
            Party::Bob => User::bob(),
            Party::Carol => User::new("carol", "1003", "carol-secret-3"),
        }
    }

    /// Its place in [`PARTIES`].
    pub fn index(self) -> usize {
        match self {
            Party::Alice => 0,
            Party::Bob => 1,
            Party::Carol => 2,
        }
    }

    /// Its SIP username.
    pub fn username(self) -> String {
        self.user().username
    }

    /// Its extension.
    pub fn extension(self) -> String {
        self.user().extension
    }

    /// Whether a number or party cell names it: by its SIP username (what a phone puts in
    /// From, e.g. `alice`, or `Test alice <1001>`) or its extension.
    pub fn named_in(self, cell: &str) -> bool {
        let u = self.user();
        cell.contains(&u.username) || cell.contains(&u.extension)
    }

    /// The two other parties.
    pub fn others(self) -> [Party; 2] {
        match self {
            Party::Alice => [Party::Bob, Party::Carol],
            Party::Bob => [Party::Alice, Party::Carol],
            Party::Carol => [Party::Alice, Party::Bob],
        }
    }
}
