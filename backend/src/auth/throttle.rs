//! Sign-in throttling with `governor` (GCRA, keyed): attempts per client address and per
//! (address, e-mail). Nothing is keyed on the e-mail alone, so a flood against an account from one
//! place never locks its owner out elsewhere.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::SignInLimits;
use crate::error::ApiError;

/// The limiters of register and login.
pub struct SignInThrottle {
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_address_email: DefaultKeyedRateLimiter<(IpAddr, String)>,
    clock: DefaultClock,
}

impl std::fmt::Debug for SignInThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInThrottle")
            .field("addresses", &self.by_address.len())
            .field("address_emails", &self.by_address_email.len())
            .finish()
    }
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

/// IPv6 clients usually hold a whole /64: limit the network, not each of its addresses.
fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

impl SignInThrottle {
    /// Limiters with the configured quotas (burst = the per-minute count, refilled evenly).
    pub fn new(limits: &SignInLimits) -> Self {
        Self {
            by_address: RateLimiter::keyed(per_minute(limits.per_address_per_minute)),
            by_address_email: RateLimiter::keyed(per_minute(limits.per_address_email_per_minute)),
            clock: DefaultClock::default(),
        }
    }

    /// One attempt from `addr`; 429 with the wait when its budget is spent.
    pub fn check_address(&self, addr: IpAddr) -> Result<(), ApiError> {
        self.by_address
            .check_key(&key(addr))
            .map_err(|not_until| self.refused(not_until.wait_time_from(self.clock.now())))
    }

    /// One attempt for `email` (normalised) from `addr`.
    pub fn check_account(&self, addr: IpAddr, email: &str) -> Result<(), ApiError> {
        self.by_address_email
            .check_key(&(key(addr), email.to_owned()))
            .map_err(|not_until| self.refused(not_until.wait_time_from(self.clock.now())))
    }

    fn refused(&self, wait: Duration) -> ApiError {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError::RateLimited {
            retry_after: secs.max(1),
        }
    }

    /// Drops the state of keys whose budget is full again (run periodically: memory stays bounded
    /// by the keys active within the last minute or so).
    pub fn forget_idle(&self) {
        self.by_address.retain_recent();
        self.by_address.shrink_to_fit();
        self.by_address_email.retain_recent();
        self.by_address_email.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_address: u32, per_email: u32) -> SignInLimits {
        SignInLimits {
            per_address_per_minute: per_address,
            per_address_email_per_minute: per_email,
            ..SignInLimits::default()
        }
    }

    #[test]
    fn the_pair_limit_spares_other_addresses_and_other_emails() {
        let t = SignInThrottle::new(&limits(100, 2));
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        assert!(t.check_account(a, "ann@example.com").is_ok());
        assert!(t.check_account(a, "ann@example.com").is_ok());
        match t.check_account(a, "ann@example.com") {
            Err(ApiError::RateLimited { retry_after }) => assert!(retry_after >= 1),
            other => panic!("third attempt: {other:?}"),
        }
        assert!(
            t.check_account(b, "ann@example.com").is_ok(),
            "owner elsewhere"
        );
        assert!(
            t.check_account(a, "bob@example.com").is_ok(),
            "other account"
        );
    }

    #[test]
    fn the_address_limit_counts_every_attempt_and_ipv6_by_network() {
        let t = SignInThrottle::new(&limits(2, 100));
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_net: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        assert!(t.check_address(a).is_ok());
        assert!(t.check_address(same_net).is_ok());
        assert!(t.check_address(a).is_err());
        assert!(t.check_address("2001:db8:1:3::1".parse().unwrap()).is_ok());
        t.forget_idle();
    }
}
