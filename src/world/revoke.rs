//! The `revoke` step: an account's owner revokes one app password, as on
//! the provider's account page after losing a device.
//!
//! App passwords exist because mail protocols cannot ask for a second
//! factor: each device gets its own random password. Losing one device
//! then costs one revocation — the other devices keep theirs — instead of
//! a new main password typed into every device again. The host's accounts
//! do the work (`mta::accounts`): the lost device is refused at its next
//! login, and an open IMAP session of it is ended with `BYE` (RFC 9051
//! §7.1.5).

use super::World;
use crate::scenario::RevokeStep;
use crate::trace::{Draft, Kind, Protocol};

pub fn revoke(world: &World, step: &RevokeStep) {
    let Some(host) = world.scenario.home_host(&step.user).and_then(|h| world.hosts.get(&h)) else { return };
    let (user, name) = (&step.user, &step.app_password);
    match host.accounts().revoke_app_password(user, name) {
        Ok(()) => {
            world.trace.emit(
            Draft::new(host.name.as_str(), host.name.as_str(), Protocol::Sim, Kind::Note, format!("{user} revokes the app password {name:?} on {}", host.name))
                .explain("The device that logs in with it is refused from now on, and an open session of it is ended. The other devices keep their own app passwords and notice nothing."),
            );
        }
        Err(err) => {
            world.trace.emit(Draft::new(
                host.name.as_str(),
                host.name.as_str(),
                Protocol::Sim,
                Kind::Failure { reason: err.to_string() },
                format!("{user} cannot revoke {name:?}: {err}"),
            ));
        }
    }
}
