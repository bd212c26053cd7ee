/*
 * How long a person's name and an email address may be: what the gateway's inputs send upstream
 * (src/resolvers/inputs.ts) and what the emulator's connect page keeps from whoever holds a link
 * (src/emulator/store.ts, its form's `maxlength`s), one bound for both.
 */

/**
 * A first or last name (and a source's username, on the connect page): longer than any person's, as long as most
 * systems' columns. The upstream keeps what a form gives it and lists it back, whole, in the connect-token list
 * that is never paged: each character stored there is one every admin's `connectTokens` reads for a day, and a
 * name or an email address needs far less than the 4096 a URL (with a state parameter) may take.
 */
export const MAX_NAME_LENGTH = 256;

/** The longest address SMTP can carry (RFC 5321's 256-octet path, less its angle brackets). */
export const MAX_EMAIL_LENGTH = 254;
