//! `git push slipway main`, end to end: sshd's forced command ([`dispatch`]), the bare repo's
//! pre-receive hook ([`hook`]) that exports the pushed tree ([`export`]) and deploys it, the
//! keys in `authorized_keys` ([`keys`]), `slipway install` ([`install`]) and the sshd it sets up
//! ([`sshd`]); what builds a pushed source again: `ps:rebuild` (in [`hook`]) and `apps:clone`
//! ([`clone`]).

pub mod clone;
pub mod dispatch;
pub mod export;
pub mod hook;
pub mod install;
pub mod keys;
pub mod sshd;
