"""The pure pieces of the referent/requester conversation.

tokens: signed Message-IDs bound to (ticket, person), signed loop stamps and the instance secret.
authentication: the verdict of the topmost Authentication-Results of a trusted server, aligned with From.
quotes: the new text of a reply, without quoted history and signature.
htmltext: the text of an HTML reply, quotes marked and the client's quote container left out.
commands: the command lines at the top of a referent's reply, the text below them and their errors.
"""
