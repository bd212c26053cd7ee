import { execute, GraphQLRequestError } from './client';
import { ConnectedAccount } from './operations';

// The callback page: Context.IO sends the browser here with ?contextio_token=…; show the account it made.

const status = document.querySelector<HTMLElement>('#status')!;
const accountSection = document.querySelector<HTMLElement>('#account')!;

/** Says how the flow ended, in the page's title too: the first thing a screen reader or a browser tab shows. */
function conclude(outcome: 'Mailbox connected' | 'Mailbox not connected' | 'Account not loaded', message: string): void {
  document.title = `${outcome} · Context.IO GraphQL example`;
  status.textContent = message;
}

function cell(row: HTMLTableRowElement, text: string): void {
  // textContent, never innerHTML: these strings come from a mail server's user.
  row.insertCell().textContent = text;
}

async function show(token: string): Promise<void> {
  let connectToken;
  try {
    ({ connectToken } = await execute(ConnectedAccount, { token }));
  } catch (error) {
    // Branch on the error's code and where it is, never on its message.
    if (!(error instanceof GraphQLRequestError)) throw error;
    // The account's own NOT_FOUND (below the token, at a field that reads the account): the user did connect
    // the mailbox, and its account has been deleted since; the token goes on embedding it as it was.
    if (error.failedWithin('NOT_FOUND', ['connectToken', 'account'])) {
      conclude('Account not loaded', 'The mailbox was connected, but its account has been deleted since.');
      return;
    }
    if (!error.failedWith('NOT_FOUND', ['connectToken'])) throw error;
    connectToken = null;
  }
  if (!connectToken) {
    conclude('Mailbox not connected', 'This connect token does not exist (or has expired).');
    return;
  }
  if (!connectToken.used) {
    conclude('Mailbox not connected', 'The mailbox was not connected: the connect flow was not completed.');
    return;
  }
  const account = connectToken.account;
  // Used, with no account: the upstream named none (`{}`). The user did finish; starting again would not help.
  if (!account) {
    conclude('Account not loaded', 'The connect flow was completed, but Context.IO names no account for this token.');
    return;
  }
  conclude('Mailbox connected', 'Mailbox connected.');
  accountSection.hidden = false;
  document.querySelector('#account-id')!.textContent = account.id;
  document.querySelector('#account-name')!.textContent = [account.firstName, account.lastName].filter(Boolean).join(' ') || '—';
  document.querySelector('#account-emails')!.textContent = account.emailAddresses.join(', ');
  const table = document.querySelector<HTMLTableElement>('#sources')!;
  for (const source of account.sources) {
    const row = table.tBodies[0]!.insertRow();
    cell(row, source.label);
    // What the upstream did not send is '—', as a missing name is. For the status that is not UNKNOWN, which
    // is a status it sent that the gateway does not know.
    cell(row, source.email ?? '—');
    cell(row, source.server ?? '—');
    cell(row, source.status ?? '—');
  }
}

/**
 * The token of this callback, taken out of the address at once: a connect token is the capability to read the
 * account it made (docs/auth.md), and left in the address it stays in the browser's history, in what a user
 * copies to share the page, and in a Referer. Kept for this tab alone (sessionStorage), so a reload still shows
 * the account.
 */
function callbackToken(): string | null {
  const params = new URLSearchParams(location.search);
  const given = params.get('contextio_token');
  if (given === null) return sessionStorage.getItem('contextio_token');
  sessionStorage.setItem('contextio_token', given);
  params.delete('contextio_token');
  const rest = params.toString();
  history.replaceState(history.state, '', `${location.pathname}${rest === '' ? '' : `?${rest}`}${location.hash}`);
  return given;
}

const token = callbackToken();
if (!token) {
  conclude('Mailbox not connected', 'No contextio_token in the address: start from the first page.');
} else {
  show(token).catch((error: unknown) => {
    conclude('Account not loaded', `Could not load the account: ${error instanceof Error ? error.message : String(error)}`);
  });
}
