"""An application factory, served as ``factory:create_app('howdy')``."""


def create_app(greeting):
    body = f"{greeting} from a factory\n".encode()

    def app(environ, start_response):
        start_response(
            "200 OK",
            [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return app
