//! The development provider: no network, no money, Stripe's test tokens and Stripe's
//! idempotency.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use uuid::Uuid;

use super::{
    Card, Charge, ChargeError, ChargeRequest, ChargeStatus, Found, PaymentProvider, Refund,
    RefundError, RefundRequest,
};

/// The token that always succeeds.
pub const TOKEN_SUCCEEDS: &str = "tok_visa";
/// The token that is always declined.
pub const TOKEN_DECLINED: &str = "tok_chargeDeclined";
/// How the ids of its charges begin.
const CHARGE_PREFIX: &str = "ch_dev_";
/// The message of a decline, as Stripe words it.
pub const DECLINE_MESSAGE: &str = "Your card was declined.";

/// Charges in memory: `tok_visa` succeeds with a `ch_dev_...` id, `tok_chargeDeclined` is
/// declined, anything else is an invalid token. Answers are remembered per idempotency key
/// (declines too, as Stripe does; invalid tokens not, as Stripe keeps no answer for a request
/// it refused before executing it), and a key reused with other parameters is refused like
/// Stripe refuses it. Clones share their memory. The memory is the process's: a restart
/// forgets it, which is harmless in development.
#[derive(Debug, Clone, Default)]
pub struct DevProvider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    delay: Duration,
    /// How many calls and answers it remembers ([`MAX_CALLS`], [`MAX_ANSWERS`]).
    limits: (usize, usize),
    state: Mutex<State>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            delay: Duration::ZERO,
            limits: (MAX_CALLS, MAX_ANSWERS),
            state: Mutex::default(),
        }
    }
}

/// Calls remembered for [`DevProvider::calls`]; older ones are forgotten.
const MAX_CALLS: usize = 1_000;
/// Idempotency keys remembered (Stripe keeps them a day); the oldest are forgotten first.
const MAX_ANSWERS: usize = 100_000;

#[derive(Debug, Default)]
struct State {
    /// The last [`MAX_CALLS`] requests received, in order.
    calls: VecDeque<ChargeRequest>,
    /// The first request and its answer, per idempotency key; at most [`MAX_ANSWERS`].
    answers: HashMap<String, (ChargeRequest, Result<Charge, ChargeError>)>,
    /// The keys of `answers`, oldest first.
    answered: VecDeque<String>,
    /// While set, every call fails as an outage would, before charging anything.
    unavailable: bool,
    /// The first refund request and its answer, per idempotency key; at most
    /// [`MAX_ANSWERS`].
    refunds: HashMap<String, (RefundRequest, Result<Refund, RefundError>)>,
    /// The keys of `refunds`, oldest first.
    refunded: VecDeque<String>,
    /// How many refund calls it received (replays included).
    refund_calls: usize,
    /// While set, every refund is refused, as a provider refuses one for a disputed charge.
    refuse_refunds: bool,
}

/// A charge the development provider made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCharge {
    pub id: String,
    pub idempotency_key: String,
    pub order_id: Uuid,
    pub amount_cents: i64,
    pub currency: String,
}

impl DevProvider {
    pub fn new() -> Self {
        DevProvider::default()
    }

    /// A provider that takes `delay` to answer each call, like a network round trip (tests
    /// use it to keep a charge in flight while other requests arrive).
    pub fn with_delay(delay: Duration) -> Self {
        DevProvider {
            inner: Arc::new(Inner {
                delay,
                ..Inner::default()
            }),
        }
    }

    /// Simulates an outage: while on, calls fail with [`ChargeError::Unavailable`] and charge
    /// nothing.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.state().unavailable = unavailable;
    }

    /// Makes every refund be refused (`true`), as a provider refuses to refund a disputed
    /// charge.
    pub fn set_refunds_refused(&self, refused: bool) {
        self.state().refuse_refunds = refused;
    }

    /// The refunds it made (one per idempotency key that succeeded), and how many refund
    /// calls it received in all.
    pub fn refunds(&self) -> (Vec<(RefundRequest, Refund)>, usize) {
        let state = self.state();
        let made = state
            .refunded
            .iter()
            .filter_map(|key| match state.refunds.get(key)? {
                (request, Ok(refund)) => Some((request.clone(), refund.clone())),
                (_, Err(_)) => None,
            })
            .collect();
        (made, state.refund_calls)
    }

    /// The calls received lately (the last thousand), in order.
    pub fn calls(&self) -> Vec<ChargeRequest> {
        self.state().calls.iter().cloned().collect()
    }

    /// The charges it still remembers (one per idempotency key that succeeded).
    pub fn charges(&self) -> Vec<DevCharge> {
        let mut charges: Vec<DevCharge> = self
            .state()
            .answers
            .iter()
            .filter_map(|(key, (request, answer))| {
                let charge = answer.as_ref().ok()?;
                Some(DevCharge {
                    id: charge.id.clone(),
                    idempotency_key: key.clone(),
                    order_id: request.order_id,
                    amount_cents: request.amount_cents,
                    currency: request.currency.clone(),
                })
            })
            .collect();
        charges.sort_by(|a, b| a.id.cmp(&b.id));
        charges
    }

    /// Runs a charge as if a request had been sent earlier (tests use it to play a charge that
    /// succeeded just before a crash).
    pub fn charge_now(&self, request: &ChargeRequest) -> Result<Charge, ChargeError> {
        let (max_calls, max_answers) = self.inner.limits;
        let mut state = self.state();
        if state.calls.len() >= max_calls {
            state.calls.pop_front();
        }
        state.calls.push_back(request.clone());
        if state.unavailable {
            return Err(ChargeError::Unavailable(
                "the development provider is simulating an outage".into(),
            ));
        }
        if let Some((first, answer)) = state.answers.get(&request.idempotency_key) {
            if first != request {
                // Stripe's `idempotency_error`: the request cannot be answered at all.
                return Err(ChargeError::Unavailable(
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.".into(),
                ));
            }
            return answer.clone();
        }
        let answer = match request.token.as_str() {
            TOKEN_SUCCEEDS => Ok(Charge {
                id: format!("{CHARGE_PREFIX}{}", Uuid::new_v4().simple()),
                status: ChargeStatus::Succeeded,
                card: Some(Card {
                    brand: "visa".into(),
                    last4: "4242".into(),
                }),
            }),
            TOKEN_DECLINED => Err(ChargeError::Declined(DECLINE_MESSAGE.into())),
            _ => {
                return Err(ChargeError::InvalidToken(format!(
                    "The development provider only knows the tokens {TOKEN_SUCCEEDS} and {TOKEN_DECLINED}"
                )));
            }
        };
        if state.answered.len() >= max_answers
            && let Some(oldest) = state.answered.pop_front()
        {
            state.answers.remove(&oldest);
        }
        state.answered.push_back(request.idempotency_key.clone());
        state.answers.insert(
            request.idempotency_key.clone(),
            (request.clone(), answer.clone()),
        );
        answer
    }

    /// Refunds at once (the synchronous half of [`PaymentProvider::refund`]).
    fn refund_now(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        let (_, max_answers) = self.inner.limits;
        let mut state = self.state();
        state.refund_calls += 1;
        if state.unavailable {
            return Err(RefundError::Unavailable(
                "the development provider is simulating an outage".into(),
            ));
        }
        if let Some((first, answer)) = state.refunds.get(&request.idempotency_key) {
            if first != request {
                return Err(RefundError::Unavailable(
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.".into(),
                ));
            }
            return answer.clone();
        }
        // Its memory is the process's: another replica (or this one before a restart) may
        // have made the charge. Any charge id of its own making can be refunded.
        let charged = request.charge_id.starts_with(CHARGE_PREFIX)
            || state
                .answers
                .values()
                .any(|(_, answer)| matches!(answer, Ok(charge) if charge.id == request.charge_id));
        let refunded_before = state
            .refunds
            .values()
            .any(|(first, answer)| first.charge_id == request.charge_id && answer.is_ok());
        let answer = if state.refuse_refunds {
            Err(RefundError::Refused(
                "This charge is disputed and cannot be refunded.".into(),
            ))
        } else if !charged {
            Err(RefundError::Refused(format!(
                "No such charge: '{}'",
                request.charge_id
            )))
        } else if refunded_before {
            Err(RefundError::Refused(format!(
                "Charge {} has already been refunded.",
                request.charge_id
            )))
        } else {
            Ok(Refund {
                id: format!("re_dev_{}", Uuid::new_v4().simple()),
            })
        };
        if state.refunded.len() >= max_answers
            && let Some(oldest) = state.refunded.pop_front()
        {
            state.refunds.remove(&oldest);
        }
        state.refunded.push_back(request.idempotency_key.clone());
        state.refunds.insert(
            request.idempotency_key.clone(),
            (request.clone(), answer.clone()),
        );
        answer
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-written (each change is
        // one insert), so a poisoned lock is still safe to use.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl PaymentProvider for DevProvider {
    fn name(&self) -> &'static str {
        "dev"
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, ChargeError> {
        if !self.inner.delay.is_zero() {
            tokio::time::sleep(self.inner.delay).await;
        }
        self.charge_now(request)
    }

    async fn find(&self, request: &ChargeRequest) -> Result<Found, String> {
        let state = self.state();
        if state.unavailable {
            return Err("the development provider is simulating an outage".into());
        }
        Ok(match state.answers.get(&request.idempotency_key) {
            Some((_, answer)) => Found::Outcome(answer.clone()),
            None => Found::Nothing,
        })
    }

    async fn refund(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        if !self.inner.delay.is_zero() {
            tokio::time::sleep(self.inner.delay).await;
        }
        self.refund_now(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: &str, token: &str) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: key.into(),
            order_id: Uuid::from_u128(1),
            amount_cents: 1999,
            currency: "usd".into(),
            token: token.into(),
        }
    }

    #[tokio::test]
    async fn tok_visa_charges_once_per_key() {
        let dev = DevProvider::new();
        let first = dev.charge(&request("k1", TOKEN_SUCCEEDS)).await.unwrap();
        let again = dev.charge(&request("k1", TOKEN_SUCCEEDS)).await.unwrap();
        let other = dev.charge(&request("k2", TOKEN_SUCCEEDS)).await.unwrap();
        assert!(first.id.starts_with("ch_dev_"), "{first:?}");
        assert_eq!(first, again);
        assert_ne!(first.id, other.id);
        assert_eq!(first.status, ChargeStatus::Succeeded);
        assert_eq!(dev.calls().len(), 3);
        assert_eq!(dev.charges().len(), 2);
    }

    #[tokio::test]
    async fn declines_are_remembered_invalid_tokens_are_not() {
        let dev = DevProvider::new();
        let declined = Err(ChargeError::Declined(DECLINE_MESSAGE.into()));
        assert_eq!(dev.charge(&request("k", TOKEN_DECLINED)).await, declined);
        assert_eq!(dev.charge(&request("k", TOKEN_DECLINED)).await, declined);
        assert!(matches!(
            dev.charge(&request("j", "tok_unknown")).await,
            Err(ChargeError::InvalidToken(_))
        ));
        assert!(dev.charge(&request("j", TOKEN_SUCCEEDS)).await.is_ok());
        assert_eq!(dev.charges().len(), 1);
    }

    #[tokio::test]
    async fn a_key_reused_with_other_parameters_is_refused_and_charges_nothing() {
        let dev = DevProvider::new();
        dev.charge(&request("k", TOKEN_DECLINED)).await.unwrap_err();
        assert!(matches!(
            dev.charge(&request("k", TOKEN_SUCCEEDS)).await,
            Err(ChargeError::Unavailable(_))
        ));
        assert!(dev.charges().is_empty());
    }

    #[tokio::test]
    async fn old_calls_and_answers_are_forgotten() {
        let dev = DevProvider {
            inner: Arc::new(Inner {
                limits: (5, 3),
                ..Inner::default()
            }),
        };
        for n in 0..8 {
            dev.charge(&request(&format!("k{n}"), TOKEN_SUCCEEDS))
                .await
                .unwrap();
        }
        let calls: Vec<String> = dev.calls().into_iter().map(|c| c.idempotency_key).collect();
        assert_eq!(
            calls,
            ["k3", "k4", "k5", "k6", "k7"],
            "the oldest calls went first"
        );
        let mut kept: Vec<String> = dev
            .charges()
            .into_iter()
            .map(|c| c.idempotency_key)
            .collect();
        kept.sort();
        assert_eq!(kept, ["k5", "k6", "k7"], "the oldest answers went first");
    }

    fn refund(key: &str, charge_id: &str) -> RefundRequest {
        RefundRequest {
            idempotency_key: key.into(),
            charge_id: charge_id.into(),
            order_id: Uuid::from_u128(1),
            amount_cents: 1999,
        }
    }

    #[tokio::test]
    async fn a_charge_is_refunded_once_per_key_and_never_twice() {
        let dev = DevProvider::new();
        let charge = dev.charge(&request("k", TOKEN_SUCCEEDS)).await.unwrap();
        let first = dev.refund(&refund("r1", &charge.id)).await.unwrap();
        assert!(first.id.starts_with("re_dev_"), "{first:?}");
        assert_eq!(dev.refund(&refund("r1", &charge.id)).await, Ok(first));
        assert!(matches!(
            dev.refund(&refund("r2", &charge.id)).await,
            Err(RefundError::Refused(m)) if m.contains("already been refunded")
        ));
        assert!(matches!(
            dev.refund(&refund("r3", "pi_not_ours")).await,
            Err(RefundError::Refused(_))
        ));
        // A charge another replica made (its memory is per process) can be refunded.
        let elsewhere = DevProvider::new();
        assert!(elsewhere.refund(&refund("r1", &charge.id)).await.is_ok());
        let (made, calls) = dev.refunds();
        assert_eq!((made.len(), calls), (1, 4));
    }

    #[tokio::test]
    async fn find_tells_a_lost_answer_and_an_unseen_attempt_apart() {
        let dev = DevProvider::new();
        let charged = dev.charge(&request("k", TOKEN_SUCCEEDS)).await.unwrap();
        assert_eq!(
            dev.find(&request("k", TOKEN_SUCCEEDS)).await,
            Ok(Found::Outcome(Ok(charged)))
        );
        assert_eq!(
            dev.find(&request("other", TOKEN_SUCCEEDS)).await,
            Ok(Found::Nothing)
        );
        dev.set_unavailable(true);
        assert!(dev.find(&request("k", TOKEN_SUCCEEDS)).await.is_err());
    }

    #[tokio::test]
    async fn an_outage_charges_nothing_until_it_ends() {
        let dev = DevProvider::new();
        dev.set_unavailable(true);
        assert!(matches!(
            dev.charge(&request("k", TOKEN_SUCCEEDS)).await,
            Err(ChargeError::Unavailable(_))
        ));
        assert!(dev.charges().is_empty());
        dev.set_unavailable(false);
        assert!(dev.charge(&request("k", TOKEN_SUCCEEDS)).await.is_ok());
    }
}
