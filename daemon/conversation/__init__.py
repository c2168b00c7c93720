"""The pure pieces of the referent/requester conversation.

tokens: signed Message-IDs bound to (ticket, person), signed loop stamps and the instance secret.
authentication: the verdict of the topmost Authentication-Results of a trusted server, aligned with From.
"""
