import UserService

await userServiceMain()
