#!/usr/bin/env python3
"""localstripe, adapted so that the payments service's real-Stripe requests work against it.

Runs the `localstripe` package (PyPI, version 1.15.10) in-process on 127.0.0.1 after patching
a few of its classes, so that the requests our Stripe client sends to api.stripe.com are
accepted and answered in Stripe's shapes. Each adaptation below says what it changes and why;
anything not listed behaves as localstripe does. State is in memory only: every start is empty.

    python3 scripts/localstripe.py [PORT | --port PORT]     (default: $LOCALSTRIPE_PORT or 8420)

Prints `localstripe listening on http://127.0.0.1:PORT` once it accepts connections and runs
until killed. Request and webhook logs go to stderr. Use `scripts/localstripe.sh` to get a
Python environment with localstripe installed.

What a test can rely on (see the adaptations for details):
- `POST /v1/payment_intents` with `confirm=true`, `automatic_payment_methods[...]`,
  `error_on_requires_action`, and `payment_method=pm_...` or
  `payment_method_data[type]=card` + `payment_method_data[card][token]=tok_...`;
- Stripe's test ids: `pm_card_<name>` and `tok_<name>` for the names in TEST_CARDS
  (`tok_visa`, `tok_chargeDeclined`, `pm_card_chargeCustomerFail`, ...), or a PaymentMethod
  or token made from a test card number (`POST /v1/payment_methods`, `POST /v1/tokens`);
- declines as 402 `card_error` with Stripe's codes, the intent left `requires_payment_method`;
- `Idempotency-Key` on POSTs: the first answer is replayed (`Idempotent-Replayed: true`);
- `GET /v1/payment_intents/search?query=metadata['k']:'v'`, `GET /v1/payment_intents/:id`,
  `expand[]=latest_charge` (with `payment_method_details.card.brand/last4`);
- `POST /v1/refunds` with `payment_intent`, refused once the charge is fully refunded;
- webhooks: `POST /_config/webhooks/<name>` with `url`, `secret` and optional `events[]`
  registers an endpoint; events are signed `Stripe-Signature: t=<unix>,v1=<hex hmac-sha256
  of "t.body">` and sent once, about a second after the change.
"""

import asyncio
import base64
import logging
import os
import re
import sys
from urllib.parse import parse_qsl

# This file is named like the package it wraps: take its own folder off the import path so
# that `import localstripe` finds the installed package, not this script.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

try:
    import localstripe
    from aiohttp import web
    from localstripe import resources as R
    from localstripe import server as S
    from localstripe.errors import UserError
except ImportError as error:  # pragma: no cover - a setup problem, said plainly
    sys.exit(f"localstripe is not installed ({error}); run scripts/localstripe.sh instead")

PINNED_VERSION = "1.15.10"


def fail(status, message, **fields):
    """A Stripe-shaped `invalid_request_error` with `code`/`param` when given."""
    return UserError(status, message, {k: v for k, v in fields.items() if v is not None})


# ---------------------------------------------------------------------------------------------
# Stripe's test cards.
# ---------------------------------------------------------------------------------------------

# Names usable as `pm_card_<name>` and `tok_<name>`, with the test card number each stands for.
# localstripe itself knows only pm_card_visa, pm_card_visa_chargeDeclined and
# pm_card_chargeCustomerFail, and no tok_ ids at all. (American Express is left out:
# localstripe's card checks want 16 digits and a 3-digit CVC.)
TEST_CARDS = {
    "visa": "4242424242424242",
    "visa_debit": "4000056655665556",
    "mastercard": "5555555555554444",
    "mastercard_debit": "5200828282828210",
    "mastercard_prepaid": "5105105105105100",
    "discover": "6011111111111117",
    "chargeDeclined": "4000000000000002",
    "visa_chargeDeclined": "4000000000000002",
    "chargeDeclinedInsufficientFunds": "4000000000009995",
    "visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "chargeDeclinedLostCard": "4000000000009987",
    "visa_chargeDeclinedLostCard": "4000000000009987",
    "chargeDeclinedStolenCard": "4000000000009979",
    "visa_chargeDeclinedStolenCard": "4000000000009979",
    "chargeDeclinedExpiredCard": "4000000000000069",
    "chargeDeclinedIncorrectCvc": "4000000000000127",
    "chargeDeclinedProcessingError": "4000000000000119",
    "chargeCustomerFail": "4000000000000341",
    "authenticationRequired": "4000002760003184",
    "authenticationRequiredOnSetup": "4000002500003155",
    "threeDSecure2Required": "4000000000003220",
}

GENERIC_DECLINE = ("card_declined", "generic_decline", "Your card was declined.")
INSUFFICIENT_FUNDS = "Your card has insufficient funds."
# Card number -> (error code, decline_code, message) of the decline Stripe answers when it is
# charged. localstripe declines only 4000000000000341 (and two 3-D Secure cards after
# authentication), all with the generic message; Stripe declines all of these on charge.
DECLINES = {
    "4000000000000002": GENERIC_DECLINE,
    "4000000000000341": GENERIC_DECLINE,
    "4000000000009995": ("card_declined", "insufficient_funds", INSUFFICIENT_FUNDS),
    "4000000000009987": ("card_declined", "lost_card", "Your card was declined."),
    "4000000000009979": ("card_declined", "stolen_card", "Your card was declined."),
    "4000000000000069": ("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": (
        "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."
    ),
    "4000000000000119": (
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "4000008260003178": ("card_declined", "insufficient_funds", INSUFFICIENT_FUNDS),
    "4000008400001629": GENERIC_DECLINE,
}
# What `error_on_requires_action=true` turns a card that needs 3-D Secure into.
AUTHENTICATION_DECLINE = (
    "authentication_required",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
)


def card_brand(number):
    """The brand Stripe reports for a card number, lower case as in `payment_method_details`."""
    if number.startswith("4"):
        return "visa"
    if re.match(r"5[1-5]|2(2[2-9]|[3-6]|7[01]|720)", number):
        return "mastercard"
    if re.match(r"3[47]", number):
        return "amex"
    if re.match(r"6011|65|64[4-9]", number):
        return "discover"
    if number.startswith("35"):
        return "jcb"
    if re.match(r"3[068]", number):
        return "diners"
    if number.startswith("62"):
        return "unionpay"
    return "unknown"


def new_card_payment_method(number, exp_month=12, exp_year=2034, cvc="123"):
    """A stored card PaymentMethod (`pm_...`) for a card number."""
    return R.PaymentMethod(
        type="card",
        card={"number": number, "exp_month": str(exp_month), "exp_year": str(exp_year), "cvc": cvc},
    )


# ---------------------------------------------------------------------------------------------
# Adaptations, applied by adapt() before the server starts.
# ---------------------------------------------------------------------------------------------


def adapt_store_in_memory():
    """1. No disk state. localstripe pickles its whole store to /tmp/localstripe.pickle after
    every write (shared by every instance on the machine, and slower with each object) and
    reloads it at start. Tests want an empty, private server per process: both are no-ops."""
    R.Store.dump_to_disk = lambda self: None
    R.Store.try_load_from_disk = lambda self: None


def adapt_auth():
    """2. Authentication. localstripe accepts `Bearer sk_...` and Basic; it refuses Stripe's
    restricted keys (`rk_...`) and answers 500 to any other scheme. Now: `sk_`/`rk_` keys
    under Bearer or Basic pass, anything else is 401 like a missing key."""

    def get_api_key(request):
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme == "Bearer":
            key = value.strip()
        elif scheme == "Basic":
            try:
                key = base64.b64decode(value.strip()).decode("utf-8").split(":")[0]
            except ValueError:
                return None
        else:
            return None
        if key.startswith(("sk_", "rk_")) and len(key) > 5:
            return key
        return None

    # auth_middleware looks the function up in its module at each request.
    S.get_api_key = get_api_key


def adapt_not_found():
    """3. Missing objects. localstripe answers a bare 404 "Not Found"; Stripe says which object
    with `code: resource_missing` (`No such payment_intent: 'pi_x'`)."""
    original = R.StripeObject._api_retrieve.__func__

    def _api_retrieve(cls, id):
        try:
            return original(cls, id)
        except UserError as error:
            if error.code != 404:
                raise
            raise fail(404, f"No such {cls.object}: '{id}'", code="resource_missing", param="id")

    R.StripeObject._api_retrieve = classmethod(_api_retrieve)


def adapt_test_cards():
    """4. Test card ids and brands. `pm_card_<name>` resolves through TEST_CARDS (localstripe
    knows three names; as in localstripe, each use makes a new `pm_...`). A card
    PaymentMethod's `card.brand` follows its number instead of always `visa`, and its country
    is US like Stripe's test cards."""

    def _try_get_canonical_test_article(cls, id):
        if isinstance(id, str) and id.startswith("pm_card_") and id[8:] in TEST_CARDS:
            return new_card_payment_method(TEST_CARDS[id[8:]])
        return None

    R.PaymentMethod._try_get_canonical_test_article = classmethod(_try_get_canonical_test_article)

    original_init = R.PaymentMethod.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        if self.type == "card":
            self.card["brand"] = card_brand(self._card_number)
            self.card["country"] = "US"

    R.PaymentMethod.__init__ = __init__


def adapt_declines():
    """5. Declines as Stripe answers them.
    - Every card number in DECLINES is declined when charged (localstripe charges
      4000000000000002 and the other "declined" test cards successfully: it declines them
      only when attached to a customer), with that card's code, decline_code and message.
    - The 402 answer to a confirmation is a `card_error` (localstripe says
      `invalid_request_error`) carrying `decline_code`, `payment_intent` and `payment_method`
      as Stripe's does; the intent stays stored as `requires_payment_method`.
    - The intent's `last_payment_error` gains `type`, `decline_code` and `payment_method`."""
    original_is_declined = R.PaymentMethod._charging_is_declined

    def _charging_is_declined(self):
        if getattr(self, "_decline_authentication", False):
            return True
        if getattr(self, "type", None) == "card":
            if getattr(self, "_card_number", None) in DECLINES:
                return True
        return original_is_declined(self)

    # Card and Source delegate to PaymentMethod._charging_is_declined at call time.
    R.PaymentMethod._charging_is_declined = _charging_is_declined

    def _set_auth_failure(self):
        source = R.PaymentMethod._api_retrieve(self.payment_method)
        if getattr(source, "_decline_authentication", False):
            code, decline_code, message = AUTHENTICATION_DECLINE
        else:
            code, decline_code, message = DECLINES.get(
                getattr(source, "_card_number", None), GENERIC_DECLINE
            )
        self.status = "failed"
        self.failure_code = code
        self.failure_message = message
        self._decline_code = decline_code

    R.Charge._set_auth_failure = _set_auth_failure

    original_report = R.PaymentIntent._report_failure

    def _report_failure(self):
        try:
            original_report(self)  # sends payment_intent.payment_failed, raises the 402
        except UserError as error:
            body = error.body["error"]
            body["type"] = "card_error"
            body["decline_code"] = getattr(self.latest_charge, "_decline_code", None)
            body["payment_intent"] = self._export()
            body["payment_method"] = R.PaymentMethod._api_retrieve(self.payment_method)._export()
            raise

    R.PaymentIntent._report_failure = _report_failure

    original_error = R.PaymentIntent.last_payment_error.fget

    def last_payment_error(self):
        error = original_error(self)
        if error and self.latest_charge is not None and self.latest_charge.status == "failed":
            error = dict(
                error,
                type="card_error",
                decline_code=getattr(self.latest_charge, "_decline_code", None),
                payment_method=R.PaymentMethod._api_retrieve(self.payment_method)._export(),
            )
        return error

    R.PaymentIntent.last_payment_error = property(last_payment_error)


# Stripe's minimum charge for a few currencies (smallest unit). localstripe accepts any
# positive amount; Stripe answers 400 `amount_too_small` with `param: amount`.
MINIMUM_AMOUNTS = {"usd": 50, "eur": 50, "cad": 50, "aud": 50, "chf": 50, "gbp": 30}


def adapt_payment_intent_create():
    """6. `POST /v1/payment_intents` accepts what our client sends. localstripe answers 400
    "Unexpected automatic_payment_methods, error_on_requires_action, payment_method_data".
    - `automatic_payment_methods[enabled|allow_redirects]`: checked, then ignored (cards are
      the only method here and none redirects).
    - `error_on_requires_action=true` (with `confirm=true`, as Stripe demands): a card that
      needs 3-D Secure is declined (402 `authentication_required`, intent left
      `requires_payment_method`) instead of answering `requires_action`.
    - `payment_method_data[type]=card` with `payment_method_data[card][token]=tok_...` (a
      TEST_CARDS name or a token from `POST /v1/tokens`, used once like Stripe's) or with raw
      `card[number|exp_month|exp_year|cvc]`: a new `pm_...` is made from it and used as
      `payment_method`, as Stripe does.
    - `payment_method=pm_card_<name>` is resolved once, so the intent names the real `pm_...`
      (localstripe kept the alias and made a fresh PaymentMethod at each look-up).
    - an unknown `payment_method` or token is 400 `resource_missing` with its `param` (localstripe:
      a bare 404), an amount under Stripe's minimum is 400 `amount_too_small`, and
      `confirm=true` without a payment method is a 400 (localstripe: 500)."""
    original_create = R.PaymentIntent._api_create.__func__

    def _api_create(cls, automatic_payment_methods=None, error_on_requires_action=None,
                    payment_method_data=None, **data):
        if automatic_payment_methods is not None:
            if not isinstance(automatic_payment_methods, dict) or not set(
                automatic_payment_methods
            ) <= {"enabled", "allow_redirects"}:
                raise fail(400, "Invalid automatic_payment_methods",
                           param="automatic_payment_methods")
            if R.try_convert_to_bool(automatic_payment_methods.get("enabled")) not in (True, False):
                raise fail(400, "Invalid boolean", param="automatic_payment_methods[enabled]")
            if automatic_payment_methods.get("allow_redirects", "never") not in ("always", "never"):
                raise fail(400, "Invalid allow_redirects",
                           param="automatic_payment_methods[allow_redirects]")

        if error_on_requires_action is not None:
            error_on_requires_action = R.try_convert_to_bool(error_on_requires_action)
            if error_on_requires_action not in (True, False):
                raise fail(400, "Invalid boolean", param="error_on_requires_action")
            if error_on_requires_action and R.try_convert_to_bool(data.get("confirm")) is not True:
                raise fail(400, "error_on_requires_action can only be used with confirm=true",
                           param="error_on_requires_action")

        amount = R.try_convert_to_int(data.get("amount"))
        currency = data.get("currency")
        minimum = MINIMUM_AMOUNTS.get(currency.lower() if isinstance(currency, str) else None)
        if isinstance(amount, int) and minimum is not None and 0 < amount < minimum:
            raise fail(400, f"Amount must be at least {minimum} {currency.lower()} (smallest unit)",
                       code="amount_too_small", param="amount")

        token = None
        if payment_method_data is not None:
            if data.get("payment_method") is not None:
                raise fail(400, "Pass either payment_method or payment_method_data, not both",
                           param="payment_method_data")
            if not isinstance(payment_method_data, dict) or \
                    payment_method_data.get("type") != "card":
                raise fail(400, "Only payment_method_data[type]=card is supported here",
                           param="payment_method_data[type]")
            card = payment_method_data.get("card")
            if not isinstance(card, dict):
                raise fail(400, "Missing payment_method_data[card]",
                           param="payment_method_data[card]")
            if "token" in card:
                name = card["token"]
                if isinstance(name, str) and name.startswith("tok_") and name[4:] in TEST_CARDS:
                    pm = new_card_payment_method(TEST_CARDS[name[4:]])
                else:
                    token = R.store.get(f"token:{name}")
                    if token is None:
                        raise fail(400, f"No such token: '{name}'", code="resource_missing",
                                   param="payment_method_data[card][token]")
                    if getattr(token, "_used", False):
                        raise fail(400, f"You cannot use a Stripe token more than once: {name}.",
                                   code="token_already_used",
                                   param="payment_method_data[card][token]")
                    pm = new_card_payment_method(token.card._card_number, token.card.exp_month,
                                                 token.card.exp_year)
            else:
                pm = R.PaymentMethod(type="card", card=card)
            data["payment_method"] = pm.id
        elif data.get("payment_method") is None:
            if R.try_convert_to_bool(data.get("confirm")) is True:
                raise fail(400, "You cannot confirm this PaymentIntent because it's missing a "
                                "payment method.", code="payment_intent_unexpected_state",
                           param="payment_method")
        elif isinstance(data.get("payment_method"), str):
            name = data["payment_method"]
            try:
                data["payment_method"] = R.PaymentMethod._api_retrieve(name).id
            except UserError:
                raise fail(400, f"No such PaymentMethod: '{name}'", code="resource_missing",
                           param="payment_method")

        intent = original_create(cls, **data)  # a decline raises its 402 here
        if token is not None:
            token._used = True

        if error_on_requires_action and intent.status == "requires_action":
            source = R.PaymentMethod._api_retrieve(intent.payment_method)
            intent.next_action = None
            source._decline_authentication = True  # read by the decline hooks of adaptation 5
            try:
                intent._create_charge(on_failure_now=intent._report_failure)  # raises the 402
            finally:
                source._decline_authentication = False
        return intent

    R.PaymentIntent._api_create = classmethod(_api_create)


def adapt_payment_intent_shape():
    """7. PaymentIntent as API version 2024-06-20 shows it.
    - `amount_received` (localstripe has none; our webhook check compares it): the amount
      once `succeeded`, else 0.
    - `latest_charge` is the charge id unless expanded (`expand[]=latest_charge`):
      localstripe always inlines the whole charge, which would hide a missing `expand`.
    - no `charges` list (Stripe removed it in 2022-11-15)."""
    R.PaymentIntent.amount_received = property(
        lambda self: self.amount if self.status == "succeeded" else 0
    )

    original_export = R.PaymentIntent._export

    def _export(self, expand=None):
        exported = original_export(self, expand=expand)  # checks `expand` too
        exported.pop("charges", None)
        expanded = any(path.split(".")[0] == "latest_charge" for path in expand or [])
        if isinstance(exported.get("latest_charge"), dict) and not expanded:
            exported["latest_charge"] = exported["latest_charge"]["id"]
        return exported

    R.PaymentIntent._export = _export


def adapt_charge_details():
    """8. `payment_method_details` on charges (localstripe has none), with the card's brand
    and last four digits: what a receipt reads from an expanded `latest_charge`."""

    def payment_method_details(self):
        try:
            source = R.PaymentMethod._api_retrieve(self.payment_method)
        except UserError:
            return None
        number = getattr(source, "_card_number", None)
        if number is None:
            return {"type": getattr(source, "type", None)}
        if isinstance(source, R.PaymentMethod):
            exp_month, exp_year = source.card["exp_month"], source.card["exp_year"]
        else:  # a Card from a token or a customer's sources
            exp_month, exp_year = source.exp_month, source.exp_year
        return {
            "type": "card",
            "card": {
                "brand": card_brand(number),
                "last4": number[-4:],
                "exp_month": exp_month,
                "exp_year": exp_year,
                "country": "US",
                "funding": "credit",
                "fingerprint": R.fingerprint(number),
                "network": card_brand(number),
            },
        }

    R.Charge.payment_method_details = property(payment_method_details)


def adapt_refunds():
    """9. `POST /v1/refunds`.
    - refused once the charge is fully refunded (400 `charge_already_refunded`) or for more
      than is left (400 `amount_too_large`): localstripe refunds the same charge again and
      again;
    - an intent without a successful charge (`requires_action`, `processing`, ...) is a 400,
      not localstripe's 500;
    - an unknown intent or charge is 400 `resource_missing` with its `param`;
    - `charge.refunded` (the charge) and `refund.created` (the refund) webhooks are sent:
      localstripe sends none for refunds."""
    original_create = R.Refund._api_create.__func__

    def _api_create(cls, charge=None, payment_intent=None, amount=None, **data):
        target = charge
        if isinstance(payment_intent, str) and charge is None:
            try:
                intent = R.PaymentIntent._api_retrieve(payment_intent)
            except UserError:
                raise fail(400, f"No such payment_intent: '{payment_intent}'",
                           code="resource_missing", param="payment_intent")
            if intent.latest_charge is None or intent.latest_charge.status == "pending":
                raise fail(400, f"This PaymentIntent ({payment_intent}) does not have a successful "
                                "charge to refund.", param="payment_intent")
            target = intent.latest_charge.id
        if isinstance(target, str):
            try:
                charge_obj = R.Charge._api_retrieve(target)
            except UserError:
                raise fail(400, f"No such charge: '{target}'", code="resource_missing",
                           param="charge")
            left = charge_obj.amount - charge_obj.amount_refunded
            if charge_obj.status == "succeeded" and left <= 0:
                raise fail(400, f"Charge {charge_obj.id} has already been refunded.",
                           code="charge_already_refunded")
            wanted = R.try_convert_to_int(amount)
            if isinstance(wanted, int) and wanted > left:
                raise fail(400, f"Refund amount ({wanted}) is greater than unrefunded amount on "
                                f"charge ({left})", code="amount_too_large", param="amount")
        refund = original_create(cls, charge=charge, payment_intent=payment_intent, amount=amount,
                                 **data)
        R.schedule_webhook(R.Event("charge.refunded", R.Charge._api_retrieve(refund.charge)))
        R.schedule_webhook(R.Event("refund.created", refund))
        return refund

    R.Refund._api_create = classmethod(_api_create)


# (auth header, Idempotency-Key) -> (request fingerprint, status, body).
_idempotent_answers = {}
_idempotent_in_flight = set()


def request_fingerprint(request, body):
    if request.content_type == "application/x-www-form-urlencoded":
        params = tuple(sorted(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))
        return request.path, params
    return request.path, body


@web.middleware
async def idempotency_middleware(request, handler):
    """10. `Idempotency-Key` (localstripe ignores it: every retry makes a new intent, charge
    or refund). On a POST, the first answer per key (per API key) is kept and replayed to
    later requests with the same key, with `Idempotent-Replayed: true`; both carry the
    `Idempotency-Key` header, as Stripe's do. Kept: 2xx and 402 answers (Stripe keeps every
    answer of a request that began executing; validation errors are not kept, so a corrected
    retry may reuse the key). The same key with other parameters or another path is 400
    `idempotency_error`; while the first request is running, 409 `idempotency_key_in_use`.
    Keys never expire (Stripe: 24 hours)."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or key is None:
        return await handler(request)
    if not key or len(key) > 255:
        return fail(400, "Idempotency-Key must be 1 to 255 characters",
                    code="idempotency_key_invalid").to_response()
    slot = (request.headers.get("Authorization", ""), key)
    fingerprint = request_fingerprint(request, await request.read())
    saved = _idempotent_answers.get(slot)
    if saved is not None:
        if saved[0] != fingerprint:
            error = fail(400, f"Keys for idempotent requests can only be used with the same "
                              f"parameters they were first used with. Try a key other than "
                              f"'{key}' for a different request.")
            error.body["error"]["type"] = "idempotency_error"
            return error.to_response()
        return web.Response(body=saved[2], status=saved[1], content_type="application/json",
                            headers={"Idempotent-Replayed": "true", "Idempotency-Key": key})
    if slot in _idempotent_in_flight:
        return fail(409, "There is currently another in-progress request using this API key "
                         "and idempotency key. Try again later.",
                    code="idempotency_key_in_use").to_response()
    _idempotent_in_flight.add(slot)
    try:
        response = await handler(request)
    finally:
        _idempotent_in_flight.discard(slot)
    if isinstance(response, web.Response) and response.body is not None:
        if 200 <= response.status < 300 or response.status == 402:
            _idempotent_answers[slot] = (fingerprint, response.status, bytes(response.body))
        response.headers["Idempotency-Key"] = key
    return response


# One clause of Stripe's search language: `[-]field:value` or `[-]metadata['key']:'value'`.
_SEARCH_CLAUSE = re.compile(
    r"""(?P<neg>-?)"""
    r"""(?:metadata\[(?P<q>['"])(?P<meta>(?:\\.|(?!(?P=q)).)*)(?P=q)\]|(?P<field>[a-z_]+))"""
    r""":(?:(?P<vq>['"])(?P<quoted>(?:\\.|(?!(?P=vq)).)*)(?P=vq)|(?P<bare>[^\s'"]+))"""
)
_SEARCH_FIELDS = ("amount", "currency", "customer", "status")


def search_predicate(query):
    """A function intent -> bool for a query, or a 400 for what this subset does not read."""
    parts = re.split(r"\s+(AND|OR)\s+", query.strip())
    clauses, operators = parts[::2], set(parts[1::2])
    if len(operators) > 1:
        raise fail(400, "A search query cannot combine AND and OR", param="query")
    tests = []
    for clause in clauses:
        match = _SEARCH_CLAUSE.fullmatch(clause.strip())
        if not match or (match["field"] and match["field"] not in _SEARCH_FIELDS):
            raise fail(400, f"Unsupported search clause: {clause!r} (this emulator reads "
                            f"[-]metadata['k']:'v' and [-]{{{','.join(_SEARCH_FIELDS)}}}:v)",
                       param="query")
        value = match["quoted"] if match["quoted"] is not None else match["bare"]
        value = re.sub(r"\\(.)", r"\1", value)
        meta = re.sub(r"\\(.)", r"\1", match["meta"]) if match["meta"] is not None else None
        field = match["field"]

        def test(intent, meta=meta, field=field, value=value, negated=bool(match["neg"])):
            if meta is not None:
                found = (intent.metadata or {}).get(meta) == value
            else:
                found = str(getattr(intent, field)) == value
            return found != negated

        tests.append(test)
    combine = any if operators == {"OR"} else all
    return lambda intent: combine(t(intent) for t in tests)


def search_payment_intents(request):
    params = S.unflatten_data(request.query)
    query = params.get("query")
    if not isinstance(query, str) or not query.strip():
        raise fail(400, "Missing required param: query.", code="parameter_missing", param="query")
    limit = R.try_convert_to_int(params.get("limit", 10))
    start = R.try_convert_to_int(params.get("page", 0))
    if not (isinstance(limit, int) and 1 <= limit <= 100 and isinstance(start, int) and start >= 0):
        raise fail(400, "Invalid limit or page", param="limit")
    expand = params.get("expand") or []
    if not isinstance(expand, list):
        raise fail(400, "expand must be a list (expand[]=data.latest_charge)", param="expand")
    # Stripe expands search results under `data.`.
    item_expand = [path[len("data."):] for path in expand if path.startswith("data.")]
    matches = search_predicate(query)
    found = [obj for key, obj in R.store.items()
             if key.startswith("payment_intent:") and matches(obj)]
    found.sort(key=lambda intent: intent.created, reverse=True)
    page = found[start:start + limit]
    more = start + limit < len(found)
    return S.json_response({
        "object": "search_result",
        "url": "/v1/payment_intents/search",
        "data": [intent._export(expand=item_expand) for intent in page],
        "has_more": more,
        "next_page": str(start + limit) if more else None,
    })


@web.middleware
async def extra_routes_middleware(request, handler):
    """11. `GET /v1/payment_intents/search` (localstripe has no search: the path is read as
    the intent id "search" and answered 404). Served from a middleware that runs after
    localstripe's auth check, so that it wins over `/v1/payment_intents/{id}` whatever the
    aiohttp version's route order. Reads `query` with clauses `metadata['k']:'v'`,
    `amount|currency|customer|status:v`, `-` to negate, joined by AND or by OR; `limit`,
    `page` (the `next_page` of an answer) and `expand[]=data.<path>`. Unlike Stripe, whose
    search index lags writes by up to about a minute, a new intent is found at once."""
    if request.method == "GET" and request.path == "/v1/payment_intents/search":
        return search_payment_intents(request)
    return await handler(request)


def adapt():
    if getattr(localstripe, "__version__", None) != PINNED_VERSION:
        print(f"warning: these adaptations were written for localstripe {PINNED_VERSION}, "
              f"not {getattr(localstripe, '__version__', '?')}", file=sys.stderr)
    adapt_store_in_memory()
    adapt_auth()
    adapt_not_found()
    adapt_test_cards()
    adapt_declines()
    adapt_payment_intent_create()
    adapt_payment_intent_shape()
    adapt_charge_details()
    adapt_refunds()
    # Outermost, to see (and keep) the final answers, localstripe's error bodies included.
    S.app.middlewares.insert(0, idempotency_middleware)
    # Innermost, after localstripe's auth check and inside its error handling.
    S.app.middlewares.append(extra_routes_middleware)


def port_from(argv):
    args = list(argv)
    if args[:1] == ["--port"] and len(args) == 2:
        args = args[1:]
    elif len(args) == 1 and args[0].startswith("--port="):
        args = [args[0][len("--port="):]]
    if len(args) > 1:
        sys.exit("usage: localstripe.py [PORT | --port PORT]")
    raw = args[0] if args else os.environ.get("LOCALSTRIPE_PORT") or "8420"
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        sys.exit(f"localstripe.py: not a port: {raw!r}")
    return int(raw)


async def serve(port):
    access = logging.getLogger("aiohttp.access")  # localstripe's webhook log goes here too
    access.setLevel(logging.INFO)
    access.addHandler(logging.StreamHandler(sys.stderr))
    runner = web.AppRunner(S.app, access_log=access)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"localstripe listening on http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


def main():
    port = port_from(sys.argv[1:])
    adapt()
    try:
        asyncio.run(serve(port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
