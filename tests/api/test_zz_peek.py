from tests.api.test_role_matrix import EXPECTED, url
def test_peek(client, auth):
    for (m, p), rule in EXPECTED.items():
        print(m, p, "anon", client.request(m, url(p)).status_code, "admin", client.request(m, url(p), headers=auth("admin")).status_code, "consumer", client.request(m, url(p), headers=auth("consumer")).status_code)
    print("OPTIONS", client.options("/v1/factors").status_code, client.options("/v1/factors", headers={"Authorization": "Bearer abc"}).status_code)
