// The order page's Stripe card element (only with STRIPE_PUBLISHABLE_KEY): mounts it once
// Stripe.js has loaded, turns the card into a PaymentMethod and submits its id as the token.
(function () {
  var form = document.getElementById("pay-form");
  var pay = document.getElementById("pay");
  var cardError = document.getElementById("card-error");
  var started = false;
  function showError(message) {
    cardError.textContent = message || "";
    cardError.hidden = !message;
  }
  function start() {
    if (started || !window.Stripe) { return; }
    started = true;
    document.getElementById("stripe-unavailable").hidden = true;
    var stripe = window.Stripe(form.getAttribute("data-stripe-key"));
    var card = stripe.elements().create("card");
    card.on("ready", function () { pay.disabled = false; });
    card.on("change", function (event) { showError(event.error && event.error.message); });
    card.mount("#card-element");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      pay.disabled = true;
      showError("");
      stripe.createPaymentMethod({ type: "card", card: card }).then(function (result) {
        if (result.error) {
          showError(result.error.message);
          pay.disabled = false;
          return;
        }
        document.getElementById("token").value = result.paymentMethod.id;
        form.submit();
      }, function () {
        showError("Stripe could not be reached. Check your connection and try again.");
        pay.disabled = false;
      });
    });
  }
  start();
  document.getElementById("stripe-js").addEventListener("load", start);
})();
