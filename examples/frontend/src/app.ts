import { execute, GraphQLRequestError } from './client';
import { CreateConnectToken } from './operations';

// The start page: one button that connects a mailbox through Context.IO's connect flow.

const form = document.querySelector<HTMLFormElement>('#connect-form')!;
const button = document.querySelector<HTMLButtonElement>('#connect-mailbox')!;
const emailInput = document.querySelector<HTMLInputElement>('#email')!;
const status = document.querySelector<HTMLElement>('#status')!;

/**
 * Marks the address field as the one the gateway refused, described by the status that says why (what a screen
 * reader tells of the field when the user goes back to it), or as no longer in error.
 */
function markEmailRefused(refused: boolean): void {
  if (refused) {
    emailInput.setAttribute('aria-invalid', 'true');
    emailInput.setAttribute('aria-describedby', status.id);
  } else {
    emailInput.removeAttribute('aria-invalid');
    emailInput.removeAttribute('aria-describedby');
  }
}

// Its own errors are shown on the page, so nothing it does is left to reject unheard.
async function connectMailbox(): Promise<void> {
  button.disabled = true;
  markEmailRefused(false);
  status.textContent = 'Creating a connect token…';
  try {
    const { createConnectToken } = await execute(CreateConnectToken, {
      input: {
        // Context.IO sends the browser back here with ?contextio_token=… once the mailbox is connected.
        callbackUrl: new URL('callback', location.href).href,
        email: emailInput.value.trim() || null,
      },
    });
    status.textContent = 'Redirecting to the connect page…';
    location.assign(createConnectToken.browserRedirectUrl);
  } catch (error) {
    status.textContent = `Could not start: ${error instanceof Error ? error.message : String(error)}`;
    markEmailRefused(error instanceof GraphQLRequestError && error.refused('input.email'));
    button.disabled = false;
    // Disabling it took the keyboard focus off the button, to nowhere: it goes back there, unless moved meanwhile.
    if (document.activeElement === null || document.activeElement === document.body) button.focus();
  }
}

// Back from the connect page, the browser may show this page as it was left, from its back/forward cache:
// "Redirecting…" with the button disabled, which nothing would undo. The user came back to try again.
addEventListener('pageshow', (event) => {
  if (!event.persisted) return;
  button.disabled = false;
  status.textContent = '';
});

// A form, so that Enter in the address field starts too. `novalidate`: the gateway checks the address
// (BAD_USER_INPUT), and its message is what this example shows, one rule in one place.
form.addEventListener('submit', (event) => {
  event.preventDefault();
  // Enter in the field while a start is under way starts no second one.
  if (!button.disabled) void connectMailbox();
});
