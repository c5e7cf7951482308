"""The one exception type that carries a message meant for the user."""


class UserError(Exception):
    """Bad input (flag, file, folder) described in one line: what is wrong and what to do.

    The entry scripts catch it and print the message without a traceback.
    """
