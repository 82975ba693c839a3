// Billing > Payment method: Stripe.js confirms the SetupIntent with the card typed
// in its element, then the form posts the SetupIntent's id to the portal.
(function () {
  const form = document.getElementById("card-form");
  if (!form || typeof Stripe === "undefined") return;
  const stripe = Stripe(form.dataset.publishableKey);
  const card = stripe.elements().create("card");
  card.mount("#card-element");
  const errors = document.getElementById("card-errors");
  const button = document.getElementById("card-save");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    errors.hidden = true;
    const result = await stripe.confirmCardSetup(form.dataset.clientSecret, {
      payment_method: { card: card },
    });
    if (result.error) {
      errors.textContent = result.error.message || "The card could not be set up.";
      errors.hidden = false;
      button.disabled = false;
      return;
    }
    form.elements.setup_intent.value = result.setupIntent.id;
    form.submit();
  });
})();
