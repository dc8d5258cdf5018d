"""The cockpit's inbox: questions, disputes and call-back requests from the debtor's page,
each with an owner, a due time from the promise the page made, and replies that reach the
debtor; and the case actions beside it (notes, holds, resending the link)."""
