//! The user on the kernel's aggregate abstraction.

use crate::domain::{User, UserCommand, UserEvent, UserRejection};
use tributary_kernel::{Aggregate, DomainEvent};

pub const USER_TYPE: &str = "identity.user";

impl DomainEvent for UserEvent {}

impl Aggregate for User {
    const TYPE: &'static str = USER_TYPE;
    type State = User;
    type Event = UserEvent;
    type Command = UserCommand;
    type Rejection = UserRejection;

    fn decide(state: &User, command: UserCommand) -> Result<Vec<UserEvent>, UserRejection> {
        state.decide(command)
    }

    fn apply(state: &mut User, event: &UserEvent) {
        User::apply(state, event);
    }
}
